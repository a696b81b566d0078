/**
 * RpicamCamera against stand-ins for rpicam-vid and rpicam-still (test/support/
 * rpicam-stand-in: shell scripts taking the same options, holding "the camera" as a lock
 * as libcamera does, writing MJPEG to stdout / a JPEG to -o through ffmpeg). The real
 * programs exist only on a Raspberry Pi: this tests our side of them.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/stage.js";
import { ThingServer } from "../src/index.js";
import { RpicamCamera, type RpicamCameraOptions } from "../src/instruments/index.js";
import { LogCapture } from "./support/log-capture.js";
import { connectMjpeg, type MjpegTestClient } from "./support/mjpeg-parser.js";
import { childProcesses, pollUntil } from "./support/processes.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const STAND_IN = fileURLToPath(new URL("./support/rpicam-stand-in/", import.meta.url));
let dir: string;
const log = () => readFileSync(join(dir, "rpicam.log"), "utf8").trim().split("\n");

beforeAll(async () => {
  dir = await tempDir("rpicam-");
  process.env.RPICAM_LOCK = join(dir, "camera.lock");
  process.env.RPICAM_LOG = join(dir, "rpicam.log");
});
afterAll(removeTempDirs);

const running: { server: ThingServer; viewers: MjpegTestClient[] }[] = [];
afterEach(async () => {
  for (const { server, viewers } of running.splice(0)) {
    for (const viewer of viewers) viewer.destroy();
    await within(server.close(), "the server to close");
  }
  expect(childProcesses(process.pid, "ffmpeg"), "no capture process left").toEqual([]);
});

async function serve(extra: Partial<RpicamCameraOptions> = {}) {
  const logs = new LogCapture("info");
  const camera = new RpicamCamera({
    ...extra,
    width: 640,
    height: 480,
    fps: 20,
    stillWidth: 1280,
    stillHeight: 960,
    stillDelayMs: 1,
    rpicamVidPath: join(STAND_IN, "rpicam-vid"),
    rpicamStillPath: join(STAND_IN, "rpicam-still"),
    restartDelayMs: 100,
    maxRestartDelayMs: 200,
  });
  const stage = new SimulatedStage();
  const server = new ThingServer(
    [
      { name: "camera", thing: camera },
      { name: "stage", thing: stage },
    ],
    { port: 0, logger: logs.logger },
  );
  const base = await server.start();
  const entry = { server, viewers: [] as MjpegTestClient[] };
  running.push(entry);
  const viewer = await connectMjpeg(`${base}/camera/stream`);
  entry.viewers.push(viewer);
  return { base, camera, stage, logs, viewer };
}

describe("RpicamCamera", () => {
  it("streams rpicam-vid's MJPEG at the size, rate and quality asked", async () => {
    const { viewer, base } = await serve();
    const part = await viewer.part(3);
    expect(await sharp(part.jpeg).metadata()).toMatchObject({ width: 640, height: 480 });
    expect(log().at(-1)).toMatch(
      /^rpicam-vid \d+ --width 640 --height 480 --framerate 20 --quality 85$/,
    );
    expect(await (await fetch(`${base}/camera/sourceName`)).json()).toBe("Raspberry Pi camera 0");
  });

  it("captures with rpicam-still (camera handed over and back) with the Things' state in --exif", async () => {
    const { base, viewer, stage } = await serve();
    await viewer.part(2);
    await stage.moveTo({ x: 120, y: -40, z: 7 });
    const post = await fetch(`${base}/camera/capture`, { method: "POST" });
    expect(post.status).toBe(201);
    const href = post.headers.get("location")!;
    const done = await pollUntil(async () => {
      const s = (await (await fetch(`${base}${href}`)).json()) as {
        status: string;
        output?: { href: string };
        error?: unknown;
      };
      return s.status === "running" || s.status === "pending" ? undefined : s;
    }, "the capture to finish");
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const still = Buffer.from(await (await fetch(new URL(done.output!.href, base))).arrayBuffer());
    expect(await sharp(still).metadata()).toMatchObject({ width: 1280, height: 960 });

    const lines = log();
    const stillAt = lines.findIndex((l) => l.startsWith("rpicam-still"));
    expect(stillAt).toBeGreaterThan(0);
    const description = lines.find((l) => l.startsWith("exif IFD0.ImageDescription="))!;
    const state = JSON.parse(description.slice("exif IFD0.ImageDescription=".length)) as {
      things: { stage: { position: unknown } };
    };
    expect(state.things.stage.position).toEqual({ x: 120, y: -40, z: 7 });
    expect(
      lines.slice(stillAt).some((l) => l.startsWith("rpicam-vid")),
      "rpicam-vid started again",
    ).toBe(true);

    const after = viewer.parts.length;
    await viewer.waitFor(() => viewer.parts.length > after + 3, "frames after the capture", 10_000);
    expect(viewer.outcome, "the viewer stayed connected").toBeUndefined();
  });

  it("reports a camera held by another program with libcamera's words, and recovers when it is free", async () => {
    // Another program holds the camera: one process with the lock (as libcamera's is).
    const holder = spawn("bash", [
      "-c",
      'exec 9>"$RPICAM_LOCK"; flock 9; echo locked; exec sleep 30',
    ]);
    await within(
      new Promise((r) => holder.stdout.once("data", r)),
      "the other program to take the camera",
    );
    try {
      const { logs, base, viewer } = await serve();
      const lost = await logs.waitFor(
        (l) => /camera source Raspberry Pi camera 0 lost/.test(l.msg),
        "the fault",
      );
      expect(lost.msg).toContain("failed to acquire camera");
      expect(await (await fetch(`${base}/camera/connected`)).json()).toBe(false);
      holder.kill("SIGKILL");
      await viewer.part(2, 10_000);
      expect(await (await fetch(`${base}/camera/connected`)).json()).toBe(true);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("bounds a hung rpicam-still: the capture fails saying so, and the stream comes back", async () => {
    process.env.RPICAM_STILL_HANG = "1";
    try {
      const { base, viewer } = await serve({ stillTimeoutMs: 500 });
      await viewer.part(1);
      const href = (await fetch(`${base}/camera/capture`, { method: "POST" })).headers.get(
        "location",
      )!;
      const done = await pollUntil(async () => {
        const s = (await (await fetch(`${base}${href}`)).json()) as {
          status: string;
          error?: { detail: string };
        };
        return s.status === "running" || s.status === "pending" ? undefined : s;
      }, "the capture to give up");
      expect(done.status).toBe("failed");
      expect(done.error?.detail).toContain("took longer than 500 ms");
      const after = viewer.parts.length;
      await viewer.waitFor(() => viewer.parts.length > after + 2, "frames again", 10_000);
    } finally {
      delete process.env.RPICAM_STILL_HANG;
    }
  });
});
