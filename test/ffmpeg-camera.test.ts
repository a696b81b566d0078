/**
 * FfmpegCamera against real ffmpeg processes reading lavfi test sources and MJPEG files
 * (the same pipeline as a V4L2 webcam, with another `-f`): frames reach real clients,
 * passthrough serves the bytes ffmpeg wrote, property changes restart ffmpeg under open
 * viewers, and faults (ffmpeg killed, hung, a missing device) are reported, retried with a
 * growing delay and recovered from while a viewer stays connected.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import exifr from "exifr";
import sharp from "sharp";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Autofocus, SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import { FfmpegCamera, type FfmpegCameraOptions } from "../src/instruments/index.js";
import { withChromium } from "./support/chromium.js";
import { LogCapture } from "./support/log-capture.js";
import { connectMjpeg, findJpegEnd, type MjpegTestClient } from "./support/mjpeg-parser.js";
import { childProcesses, isAlive, pollUntil } from "./support/processes.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const FAST_FAULTS = {
  restartDelayMs: 200,
  maxRestartDelayMs: 800,
  frameTimeoutMs: 1000,
  killAfterMs: 500,
};
// ffmpeg's cold start (and sharp's for the preview) can take seconds on a loaded
// two-core CI machine: the first frames of a pipeline get a generous wait.
const FIRST_FRAMES_MS = 15_000;
const lavfi = (size = "320x240", rate = 30) => [
  "-f",
  "lavfi",
  "-i",
  `testsrc2=size=${size}:rate=${rate}`,
];

interface Rig {
  server: ThingServer;
  base: string;
  camera: FfmpegCamera;
  logs: LogCapture;
  viewers: MjpegTestClient[];
}
const rigs: Rig[] = [];

async function serveCamera(options: FfmpegCameraOptions): Promise<Rig> {
  const logs = new LogCapture("info");
  const camera = new FfmpegCamera({ ...FAST_FAULTS, ...options });
  const server = new ThingServer(
    [
      { name: "camera", thing: camera },
      { name: "stage", thing: new SimulatedStage() },
    ],
    { port: 0, logger: logs.logger },
  );
  const rig = { server, base: await server.start(), camera, logs, viewers: [] };
  rigs.push(rig);
  return rig;
}

async function view(rig: Rig, stream = "stream"): Promise<MjpegTestClient> {
  const viewer = await connectMjpeg(`${rig.base}/camera/${stream}`);
  rig.viewers.push(viewer);
  return viewer;
}

const read = async (rig: Rig, property: string) =>
  (await fetch(`${rig.base}/camera/${property}`)).json() as Promise<unknown>;

function ffmpegChildren(): number[] {
  return childProcesses(process.pid, "ffmpeg").map((p) => p.pid);
}

afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    for (const viewer of rig.viewers) viewer.destroy();
    await within(rig.server.close(), "the server to close");
  }
  expect(ffmpegChildren(), "no ffmpeg left after the server closed").toEqual([]);
});
afterAll(removeTempDirs);

describe("FfmpegCamera streaming", () => {
  it("streams a lavfi source to ffmpeg, curl and a browser's <img>, with a smaller preview", async () => {
    const rig = await serveCamera({ input: lavfi("640x480", 25), quality: 80 });
    const viewer = await view(rig);
    const part = await viewer.part(2, FIRST_FRAMES_MS);
    expect(await sharp(part.jpeg).metadata()).toMatchObject({
      width: 640,
      height: 480,
      format: "jpeg",
    });
    expect(await read(rig, "connected")).toBe(true);

    // Asynchronously: the server runs in this process.
    const client = spawn("ffmpeg", [
      "-nostdin",
      "-loglevel",
      "error",
      "-i",
      `${rig.base}/camera/stream`,
      "-frames:v",
      "20",
      "-f",
      "null",
      "-",
    ]);
    let clientErrors = "";
    client.stderr.on("data", (chunk: Buffer) => {
      clientErrors += chunk;
    });
    const clientExit = await within(
      new Promise<number | null>((r) => client.once("close", r)),
      "ffmpeg to read 20 frames",
    );
    expect(clientErrors).toBe("");
    expect(clientExit).toBe(0);

    const curl = spawn("curl", ["-sN", "--max-time", "2", `${rig.base}/camera/stream`]);
    let curlBytes = 0;
    curl.stdout.on("data", (chunk: Buffer) => {
      curlBytes += chunk.length;
    });
    const curlExit = await within(new Promise<number | null>((r) => curl.once("close", r)), "curl");
    expect(curlExit, "curl stops at --max-time (28), having read the stream").toBe(28);
    expect(curlBytes).toBeGreaterThan(10 * 1000);

    const preview = await view(rig, "preview");
    const small = await sharp((await preview.part(1, FIRST_FRAMES_MS)).jpeg).metadata();
    expect(small.width).toBeLessThan(640);

    await withChromium(async (browser) => {
      const page = await browser.newPage();
      await page.setContent(`<img id="live" src="${rig.base}/camera/stream">`);
      const width = await page.waitForFunction(
        () => (document.getElementById("live") as HTMLImageElement).naturalWidth,
        undefined,
        { timeout: 10_000 },
      );
      expect(await width.jsonValue()).toBe(640);
    });
  });

  it("passes an MJPEG source through: the bytes ffmpeg wrote are the bytes served", async () => {
    const dir = await tempDir("passthrough-");
    const file = join(dir, "source.mjpeg");
    execFileSync("ffmpeg", [
      "-nostdin",
      "-loglevel",
      "error",
      ...lavfi("320x240", 30),
      "-frames:v",
      "60",
      "-c:v",
      "mjpeg",
      "-q:v",
      "7",
      "-f",
      "mjpeg",
      file,
    ]);
    const source = readFileSync(file);
    const written: Buffer[] = [];
    for (let at = 0; at < source.length; ) {
      const end = findJpegEnd(source, at);
      written.push(source.subarray(at, end));
      at = end;
    }
    const rig = await serveCamera({
      input: ["-re", "-f", "mjpeg", "-framerate", "30", "-i", file],
      startTimeoutMs: 5000,
    });
    expect(rig.camera.passthrough).toBe(true);
    const viewer = await view(rig);
    const part = await viewer.part(5, FIRST_FRAMES_MS);
    const index = written.findIndex((jpeg) => jpeg.equals(part.jpeg));
    expect(index, "a served frame is one ffmpeg wrote, byte for byte").toBeGreaterThanOrEqual(0);
    const next = await viewer.part(6);
    expect(next.jpeg.equals(written[index + 1]!), "and the next one follows it").toBe(true);
    // Re-encoding cannot be switched on behind the user's back: quality is the source's.
    const put = await fetch(`${rig.base}/camera/quality`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: "50",
    });
    expect(put.status).toBe(409);
  });

  it("restarts ffmpeg for a new resolution or quality while the viewer stays connected", async () => {
    const rig = await serveCamera({
      input: lavfi("640x480"),
      width: 640,
      height: 480,
      quality: 95,
    });
    const viewer = await view(rig);
    const before = await viewer.part(3, FIRST_FRAMES_MS);
    const [pidBefore] = ffmpegChildren();
    const put = (property: string, value: unknown) =>
      fetch(`${rig.base}/camera/${property}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(value),
      });
    expect((await put("resolution", { width: 320, height: 240 })).status).toBe(204);
    await viewer.waitFor(
      () =>
        viewer.parts.some(
          (p) =>
            p.jpeg.readUInt16BE(0) === 0xffd8 &&
            p.receivedAt > before.receivedAt &&
            sizeOf(p.jpeg) === "320x240",
        ),
      "a 320×240 frame on the same connection",
    );
    expect(await read(rig, "fieldOfView")).toEqual({ width: 3200, height: 2400 });
    const [pidAfter] = ffmpegChildren();
    expect(pidAfter).not.toBe(pidBefore);
    expect(isAlive(pidBefore!)).toBe(false);

    const sizeAt95 = viewer.parts.at(-1)!.jpeg.length;
    expect((await put("quality", 5)).status).toBe(204);
    const mark = viewer.parts.length;
    await viewer.waitFor(
      () => viewer.parts.slice(mark).some((p) => p.jpeg.length < sizeAt95 / 2),
      "smaller frames at quality 5",
    );
    expect(viewer.outcome, "the viewer was never disconnected").toBeUndefined();
  });

  it("captures a full-resolution JPEG whose EXIF holds the Things' state", async () => {
    const rig = await serveCamera({ input: lavfi("640x480") });
    await view(rig).then((v) => v.part(1, FIRST_FRAMES_MS));
    // No size was given: the log says what the source sends, not that 1280×720 was asked.
    const size = await rig.logs.waitFor((l) => /delivers 640×480/.test(l.msg), "the size line");
    expect(size.msg).toBe("testsrc2=size=640x480:rate=30 delivers 640×480");
    const post = await fetch(`${rig.base}/camera/capture`, { method: "POST" });
    expect(post.status).toBe(201);
    const status = await pollUntil(async () => {
      const s = (await (
        await fetch(post.headers.get("location")!.replace(/^\//, `${rig.base}/`))
      ).json()) as {
        status: string;
        output?: { href: string };
      };
      return s.status === "completed" ? s : undefined;
    }, "the capture to complete");
    const blob = Buffer.from(
      await (await fetch(new URL(status.output!.href, rig.base))).arrayBuffer(),
    );
    expect(await sharp(blob).metadata()).toMatchObject({ width: 640, height: 480, format: "jpeg" });
    const exif = (await exifr.parse(blob, {
      ifd0: { pick: ["ImageDescription", "Software"] },
    })) as {
      ImageDescription: string;
      Software: string;
    };
    expect(exif.Software).toBe("labthings-ts");
    const state = JSON.parse(exif.ImageDescription) as {
      things: Record<string, Record<string, unknown>>;
    };
    expect(state.things.stage?.position).toEqual({ x: 0, y: 0, z: 0 });
    expect(state.things.camera?.resolution).toEqual({ width: 640, height: 480 });
  });
});

function sizeOf(jpeg: Buffer): string {
  for (let i = 2; i < jpeg.length - 9; ) {
    const marker = jpeg[i + 1]!;
    if (marker >= 0xc0 && marker <= 0xc3)
      return `${jpeg.readUInt16BE(i + 7)}x${jpeg.readUInt16BE(i + 5)}`;
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  return "?";
}

describe("FfmpegCamera faults", () => {
  it("reports a missing device (log with ffmpeg's words, connected:false, 503s) and retries with a growing delay", async () => {
    const rig = await serveCamera({
      device: "/dev/video-missing",
      restartDelayMs: 100,
      maxRestartDelayMs: 400,
    });
    const viewer = await view(rig);
    const lost = await rig.logs.waitFor(
      (l) => /camera source \/dev\/video-missing lost/.test(l.msg),
      "the fault log line",
    );
    expect(lost.msg).toContain("/dev/video-missing: No such file or directory");
    expect(await read(rig, "connected")).toBe(false);
    expect(String(await read(rig, "lastError"))).toContain("No such file or directory");

    const snapshot = await fetch(`${rig.base}/camera/stream/snapshot`);
    expect(snapshot.status).toBe(503);
    expect(((await snapshot.json()) as { detail: string }).detail).toContain("/dev/video-missing");
    const capture = await fetch(`${rig.base}/camera/capture`, { method: "POST" });
    expect(capture.status).toBe(503);
    expect(((await capture.json()) as { detail: string }).detail).toContain("/dev/video-missing");

    await pollUntil(
      () => (rig.logs.lines.filter((l) => l.retryInMs === 400).length >= 2 ? true : undefined),
      "the delay to reach its cap and stay there",
    );
    const delays = rig.logs.lines
      .filter((l) => typeof l.retryInMs === "number")
      .map((l) => l.retryInMs);
    expect(delays.slice(0, 4)).toEqual([100, 200, 400, 400]);
    expect(viewer.outcome, "the viewer is still connected").toBeUndefined();
  });

  it("recovers by itself after ffmpeg is killed, and the open viewer gets frames again", async () => {
    const rig = await serveCamera({ input: lavfi() });
    const viewer = await view(rig);
    await viewer.part(2, FIRST_FRAMES_MS);
    const [pid] = ffmpegChildren();
    process.kill(pid!, "SIGKILL");
    await rig.logs.waitFor(
      (l) => /camera source .* lost: ffmpeg was killed by SIGKILL/.test(l.msg),
      "the fault",
    );
    expect(await read(rig, "connected")).toBe(false);
    const stalled = viewer.parts.length;
    await viewer.waitFor(
      () => viewer.parts.length > stalled + 5,
      "frames after the restart",
      10_000,
    );
    expect(await read(rig, "connected")).toBe(true);
    expect(String(await read(rig, "lastError"))).toContain("SIGKILL");
    expect((await fetch(`${rig.base}/camera/stream/snapshot`)).status).toBe(200);
    expect(viewer.outcome).toBeUndefined();
  });

  it("kills a hung ffmpeg (no frames, deaf to SIGTERM) after the bounds, and recovers", async () => {
    const rig = await serveCamera({ input: lavfi() });
    const viewer = await view(rig);
    await viewer.part(2, FIRST_FRAMES_MS);
    const [pid] = ffmpegChildren();
    process.kill(pid!, "SIGSTOP"); // hung: no output, and SIGTERM is not acted on
    await rig.logs.waitFor((l) => /no frame from .* for \d+ ms/.test(l.msg), "the watchdog");
    await rig.logs.waitFor(
      (l) => /did not exit 500 ms after SIGTERM: killed/.test(l.msg),
      "the SIGKILL",
    );
    await pollUntil(() => (isAlive(pid!) ? undefined : true), "the hung ffmpeg to be gone");
    const stalled = viewer.parts.length;
    await viewer.waitFor(
      () => viewer.parts.length > stalled + 3,
      "frames from the new ffmpeg",
      10_000,
    );
    expect(viewer.outcome).toBeUndefined();
  });

  it("never starts a new ffmpeg while the old one still runs (a webcam stays busy until it exits)", async () => {
    const rig = await serveCamera({ input: lavfi("320x240"), width: 320, height: 240 });
    const viewer = await view(rig);
    await viewer.part(2, FIRST_FRAMES_MS);
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, ffmpegChildren().length);
    }, 25);
    try {
      // A new resolution while ffmpeg is slow to exit (stopped: SIGTERM waits for SIGKILL).
      const [first] = ffmpegChildren();
      process.kill(first!, "SIGSTOP");
      const put = await fetch(`${rig.base}/camera/resolution`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ width: 160, height: 120 }),
      });
      expect(put.status).toBe(204);
      await viewer.waitFor(
        () => viewer.parts.some((p) => sizeOf(p.jpeg) === "160x120"),
        "a 160×120 frame from the new ffmpeg",
        FIRST_FRAMES_MS,
      );
      expect(isAlive(first!)).toBe(false);
      // A fault: the watchdog's restart (200 ms) comes before the SIGKILL bound (500 ms).
      const [second] = ffmpegChildren();
      process.kill(second!, "SIGSTOP");
      await rig.logs.waitFor((l) => /no frame from .* for \d+ ms/.test(l.msg), "the watchdog");
      const stalled = viewer.parts.length;
      await viewer.waitFor(
        () => viewer.parts.length > stalled + 2,
        "frames from the third ffmpeg",
        FIRST_FRAMES_MS,
      );
      expect(isAlive(second!)).toBe(false);
    } finally {
      clearInterval(sampler);
    }
    expect(most, "ffmpeg processes at once").toBe(1);
    expect(viewer.outcome).toBeUndefined();
  });

  it("stop() leaves no ffmpeg behind, even a hung one", async () => {
    const camera = new FfmpegCamera({ input: lavfi(), killAfterMs: 300 });
    await camera.start();
    const [pid] = await pollUntil(
      () => (ffmpegChildren().length ? ffmpegChildren() : undefined),
      "ffmpeg",
    );
    process.kill(pid!, "SIGSTOP");
    const started = performance.now();
    await camera.stop();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(isAlive(pid!)).toBe(false);
  });

  it("fails to start with a clear error when the program is not installed", async () => {
    const camera = new FfmpegCamera({ input: lavfi(), ffmpegPath: "ffmpeg-not-installed" });
    await expect(camera.start()).rejects.toThrow("'ffmpeg-not-installed' is not installed");
    await camera.stop();
  });
});

describe("FfmpegCamera in the dashboard, with the simulated stage and autofocus (examples/webcam.json)", () => {
  it("shows the live view in the microscope view, captures from it, and autofocus runs on its frames", async () => {
    const logs = new LogCapture("warn");
    const camera = new FfmpegCamera({ ...FAST_FAULTS, input: lavfi("320x240", 30) });
    const server = new ThingServer(
      [
        { name: "camera", thing: camera },
        { name: "stage", thing: new SimulatedStage() },
        { name: "autofocus", thing: new Autofocus() },
      ],
      { port: 0, logger: logs.logger },
    );
    const base = await server.start();
    rigs.push({ server, base, camera, logs, viewers: [] });
    await withChromium(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`${base}/`);
      const image = page.locator("#microscope-view img.microscope-image");
      await image.waitFor({ timeout: 15_000 });
      await page.waitForFunction(
        () =>
          (document.querySelector("#microscope-view img.microscope-image") as HTMLImageElement)
            ?.naturalWidth === 320,
        undefined,
        { timeout: 15_000 },
      );
      await page
        .locator("#microscope-view")
        .getByRole("button", { name: "Capture", exact: true })
        .click();
      await page.waitForFunction(
        () =>
          (document.querySelector('[data-role="gallery"] li img') as HTMLImageElement)
            ?.naturalWidth === 320,
        undefined,
        { timeout: 15_000 },
      );
    });
    const run = await fetch(`${base}/autofocus/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ range: 200, steps: 5 }),
    });
    expect(run.status).toBe(201);
    const done = await pollUntil(
      async () => {
        const s = (await (await fetch(`${base}${run.headers.get("location")}`)).json()) as {
          status: string;
          output?: { scores: unknown[] };
        };
        return ["completed", "failed", "cancelled"].includes(s.status) ? s : undefined;
      },
      "autofocus to finish",
      20_000,
    );
    expect(done.status).toBe("completed");
    expect(done.output?.scores.length).toBe(16);
  });
});
