/**
 * Server of `bench/camera.ts`: a ThingServer (the built package, `dist/`) with one
 * FfmpegCamera whose input is BENCH_CAMERA_INPUT (JSON array of ffmpeg arguments), in
 * passthrough. Prints `{"url", "pid"}` when listening; SIGTERM closes it.
 */
import { ThingServer } from "../dist/src/index.js";
import { FfmpegCamera } from "../dist/src/instruments/index.js";

const input = JSON.parse(process.env.BENCH_CAMERA_INPUT ?? "[]");
const camera = new FfmpegCamera({ input, passthrough: true, startTimeoutMs: 20_000 });
const server = new ThingServer([{ name: "camera", thing: camera }], { port: 0 });
const url = await server.start();
process.stdout.write(`${JSON.stringify({ url, pid: process.pid })}\n`);
process.once("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
