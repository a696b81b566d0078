/**
 * `npm run bench:camera`: what FfmpegCamera costs on top of ffmpeg, and how late frames
 * reach viewers, for a 1280×720 MJPEG source at 30 fps passed through (`-c:v copy`).
 *
 * 1. Source: 300 distinct 1280×720 JPEGs (ffmpeg's testsrc2 with noise, mjpeg encoder),
 *    one MJPEG file read with `-re -stream_loop -1 -f mjpeg -framerate 30`, as a webcam
 *    delivers MJPEG in real time.
 * 2. Floor: ffmpeg alone copying that stream to /dev/null (`-c:v copy -f mjpeg`), its CPU
 *    time over a window divided by the frames it wrote (counted from `-progress`).
 * 3. FfmpegCamera: `bench/camera-server.mjs` (a ThingServer from `dist/`, same input, the
 *    same output arguments but to its pipe), with 1 and 20 viewers from
 *    `bench/mjpeg-client.mjs` in their own process. CPU per frame = (server + its ffmpeg)
 *    CPU time over the window / frames pushed to the stream; the server's share is also
 *    given per delivered frame. Latency = a viewer has the whole part − X-Timestamp,
 *    which FfmpegCamera sets when the frame's last byte left ffmpeg (its pipe read).
 * Rounds alternate floor and camera; medians. Writes `bench/results/camera.md`.
 * BENCH_QUICK=1 for one short round.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  cpuMs,
  environmentLines,
  int,
  launch,
  launchServer,
  median,
  ms,
  progress,
  QUICK,
  row,
  rule,
  runBench,
  sleep,
  startRun,
  terminate,
  waitForJson,
  watchdog,
  writeReport,
} from "./support.js";

const SERVER = fileURLToPath(new URL("./camera-server.mjs", import.meta.url));
const CLIENT = fileURLToPath(new URL("./mjpeg-client.mjs", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/camera.md", import.meta.url));
const ROUNDS = QUICK ? 1 : 3;
const WARMUP_MS = QUICK ? 1500 : 2500;
const WINDOW_MS = QUICK ? 2000 : 5000;
const VIEWERS = [1, 20] as const;
const FRAMES = 300;

const dir = mkdtempSync(join(tmpdir(), "bench-camera-"));
const source = join(dir, "source.mjpeg");
const input = ["-re", "-stream_loop", "-1", "-f", "mjpeg", "-framerate", "30", "-i", source];
/** The output FfmpegCamera gives ffmpeg in passthrough, but to /dev/null. */
const output = ["-map", "0:v:0", "-an", "-c:v", "copy", "-f", "mjpeg", "-flush_packets", "1"];

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    child.once("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${file}: ${stderr}`)),
    );
  });
}

function childPid(parent: number, name: string): number | undefined {
  try {
    const out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(parent)], {
      encoding: "utf8",
    });
    const line = out.split("\n").find((l: string) => l.trim().endsWith(name));
    return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

function getJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    get(url, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (c: string) => {
        body += c;
      });
      response.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
    }).once("error", reject);
  });
}

interface FloorRun {
  cpuPerFrameUs: number;
  fps: number;
}

/** ffmpeg alone: copy the stream to /dev/null; frames from -progress. */
async function floor(): Promise<FloorRun> {
  const ffmpeg = spawn(
    "ffmpeg",
    [
      "-hide_banner",
      "-nostdin",
      "-loglevel",
      "error",
      "-progress",
      "pipe:1",
      "-stats_period",
      "0.25",
      ...input,
      ...output,
      "-y",
      "/dev/null",
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  let frame = 0;
  let buffered = "";
  ffmpeg.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) if (line.startsWith("frame=")) frame = Number(line.slice(6));
  });
  try {
    await sleep(WARMUP_MS);
    const [cpu0, frame0, t0] = [cpuMs(ffmpeg.pid!), frame, performance.now()];
    await sleep(WINDOW_MS);
    const [cpu1, frame1, t1] = [cpuMs(ffmpeg.pid!), frame, performance.now()];
    return {
      cpuPerFrameUs: ((cpu1 - cpu0) * 1000) / (frame1 - frame0),
      fps: ((frame1 - frame0) * 1000) / (t1 - t0),
    };
  } finally {
    ffmpeg.kill("SIGKILL");
  }
}

interface CameraRun {
  viewers: number;
  nodeUsPerFrame: number;
  ffmpegUsPerFrame: number;
  totalUsPerFrame: number;
  nodeUsPerDelivered: number;
  pushedFps: number;
  deliveredFps: number;
  p50: number;
  p99: number;
}

async function camera(viewers: number): Promise<CameraRun> {
  const server = await launchServer(
    "camera server",
    [SERVER],
    { BENCH_CAMERA_INPUT: JSON.stringify(input) },
    30_000,
  );
  try {
    const stats = async () =>
      (await getJson(`${server.url}/camera/stream/stats`)).framesPushed as number;
    const ffmpegPid = await (async () => {
      for (let i = 0; i < 100; i++) {
        const pid = childPid(server.pid, "ffmpeg");
        if (pid) return pid;
        await sleep(50);
      }
      throw new Error("the camera server runs no ffmpeg");
    })();
    const client = launch("viewers", [CLIENT], {
      BENCH_CLIENT: JSON.stringify({
        url: `${server.url}/camera/stream`,
        clients: viewers,
        mode: "throughput",
        warmupMs: WARMUP_MS,
        measureMs: WINDOW_MS + 1000,
        serverPid: server.pid,
      }),
    });
    await sleep(WARMUP_MS + 500);
    const before = {
      node: cpuMs(server.pid),
      ffmpeg: cpuMs(ffmpegPid),
      frames: await stats(),
      at: performance.now(),
    };
    await sleep(WINDOW_MS);
    const after = {
      node: cpuMs(server.pid),
      ffmpeg: cpuMs(ffmpegPid),
      frames: await stats(),
      at: performance.now(),
    };
    const result = await waitForJson(
      client,
      (r) => r.event === "result" || r.event === "error",
      30_000,
    );
    if (result.event === "error") throw new Error(`viewers: ${result.message}`);
    const frames = after.frames - before.frames;
    const node = ((after.node - before.node) * 1000) / frames;
    const ffmpeg = ((after.ffmpeg - before.ffmpeg) * 1000) / frames;
    return {
      viewers,
      nodeUsPerFrame: node,
      ffmpegUsPerFrame: ffmpeg,
      totalUsPerFrame: node + ffmpeg,
      nodeUsPerDelivered: node / viewers,
      pushedFps: (frames * 1000) / (after.at - before.at),
      deliveredFps: Number(result.aggregateFps),
      p50: Number(result.p50),
      p99: Number(result.p99),
    };
  } finally {
    await terminate(server.child);
  }
}

async function main(): Promise<void> {
  watchdog(10 * 60_000, "bench:camera took over 10 minutes: stopped");
  const meta = startRun();
  progress("encoding the source: 300 frames of 1280×720");
  await run("ffmpeg", [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=1280x720:rate=30",
    "-vf",
    "noise=alls=12:allf=t",
    "-frames:v",
    String(FRAMES),
    "-c:v",
    "mjpeg",
    "-q:v",
    "5",
    "-f",
    "mjpeg",
    source,
  ]);
  const meanFrameBytes = statSync(source).size / FRAMES;
  const floors: FloorRun[] = [];
  const cameras = new Map<number, CameraRun[]>(VIEWERS.map((n) => [n, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    progress(`round ${round}/${ROUNDS}: ffmpeg alone`);
    floors.push(await floor());
    for (const viewers of round % 2 ? VIEWERS : [...VIEWERS].reverse()) {
      progress(`round ${round}/${ROUNDS}: FfmpegCamera, ${viewers} viewer(s)`);
      cameras.get(viewers)!.push(await camera(viewers));
    }
  }
  const floorUs = median(floors.map((f) => f.cpuPerFrameUs));
  const lines = [
    "# Camera benchmark: FfmpegCamera passthrough vs ffmpeg alone",
    "",
    ...environmentLines(meta()),
    `- Source: ${FRAMES} distinct 1280×720 JPEGs (testsrc2 + noise, ffmpeg mjpeg -q:v 5), ${int(meanFrameBytes)} B mean, one file read with \`${input.join(" ")}\` (real time, looped).`,
    "- Floor: ffmpeg alone, `-c:v copy -f mjpeg` to /dev/null, frames counted from `-progress`.",
    "- FfmpegCamera: `bench/camera-server.mjs` (ThingServer from `dist/`, passthrough, the same ffmpeg arguments to its pipe); viewers: `bench/mjpeg-client.mjs` in its own process. CPU = /proc schedstat of the server process and of its ffmpeg child over the window; per frame = per frame pushed to the stream.",
    "- Latency: the viewer has the whole part − its X-Timestamp, which FfmpegCamera stamps when it reads the chunk holding the frame's last byte from ffmpeg's pipe.",
    `- ${ROUNDS} round(s), ${WINDOW_MS / 1000} s windows after ${WARMUP_MS / 1000} s warm-up, floor and camera alternating; medians. **Shared 2-core machine**: read the ratios.`,
    "",
    row([
      "",
      "frames/s",
      "ffmpeg µs/frame",
      "node µs/frame",
      "total µs/frame",
      "total / floor",
      "node µs per delivered frame",
      "latency p50 ms",
      "latency p99 ms",
    ]),
    rule(9),
    row([
      "ffmpeg alone (floor)",
      median(floors.map((f) => f.fps)).toFixed(1),
      floorUs.toFixed(0),
      "–",
      floorUs.toFixed(0),
      "1.00×",
      "–",
      "–",
      "–",
    ]),
  ];
  for (const viewers of VIEWERS) {
    const runs = cameras.get(viewers)!;
    const m = (pick: (r: CameraRun) => number) => median(runs.map(pick));
    lines.push(
      row([
        `FfmpegCamera, ${viewers} viewer${viewers > 1 ? "s" : ""}`,
        m((r) => r.pushedFps).toFixed(1),
        m((r) => r.ffmpegUsPerFrame).toFixed(0),
        m((r) => r.nodeUsPerFrame).toFixed(0),
        m((r) => r.totalUsPerFrame).toFixed(0),
        `${(m((r) => r.totalUsPerFrame) / floorUs).toFixed(2)}×`,
        m((r) => r.nodeUsPerDelivered).toFixed(0),
        ms(m((r) => r.p50)),
        ms(m((r) => r.p99)),
      ]),
    );
  }
  lines.push(
    "",
    "Per run (µs per frame: ffmpeg + node = total; latency p50/p99 ms):",
    "",
    ...floors.map(
      (f, i) =>
        `- round ${i + 1} floor: ${f.cpuPerFrameUs.toFixed(0)} µs/frame at ${f.fps.toFixed(1)} fps`,
    ),
    ...[...cameras.values()]
      .flat()
      .map(
        (r) =>
          `- ${r.viewers} viewer(s): ${r.ffmpegUsPerFrame.toFixed(0)} + ${r.nodeUsPerFrame.toFixed(0)} = ${r.totalUsPerFrame.toFixed(0)} µs/frame, ${r.pushedFps.toFixed(1)} fps pushed, ${r.deliveredFps.toFixed(0)} delivered/s, latency ${ms(r.p50)} / ${ms(r.p99)}`,
      ),
    "",
  );
  writeReport(RESULTS, lines.join("\n"));
}

runBench("camera", main, () => rmSync(dir, { recursive: true, force: true }));
