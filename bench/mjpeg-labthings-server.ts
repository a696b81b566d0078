/**
 * labthings-ts side of `bench/mjpeg.ts`: a ThingServer (the built package, `dist/`) with
 * one camera Thing whose `@mjpegStream()` is fed pre-encoded JPEGs at BENCH_FPS (default
 * 30) by the same fixed-rate clock as `bench/mjpeg-bare-server.mjs`.
 *
 * The decorators need compiling: `bench/mjpeg.ts` transpiles this file with TypeScript and
 * runs it with plain `node` (as in production); by hand, run it with
 * `node --import tsx bench/mjpeg-labthings-server.ts`. Frames: every `*.jpg` in BENCH_FRAMES_DIR, sorted. Prints
 * `{"url", "stream", "pid"}` on stdout when listening; on SIGTERM runs `server.close()`,
 * prints `{"shutdown": report}` and exits 0 (1 if the shutdown had to force anything).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MjpegStream, mjpegStream, Thing, ThingServer } from "../dist/src/index.js";

const dir = process.env.BENCH_FRAMES_DIR;
if (!dir) throw new Error("BENCH_FRAMES_DIR is not set");
const frames = readdirSync(dir)
  .filter((name) => name.endsWith(".jpg"))
  .sort()
  .map((name) => readFileSync(join(dir, name)));
if (frames.length === 0) throw new Error(`no .jpg in ${dir}`);
const FPS = Number(process.env.BENCH_FPS ?? 30);

class BenchCamera extends Thing {
  static override title = "Bench camera";
  @mjpegStream() readonly stream = new MjpegStream();
  pushed = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  override async start(): Promise<void> {
    this.#running = true;
    // Tick k is due at t0 + k / FPS; more than a period late, realign (no catch-up burst).
    const period = 1000 / FPS;
    let due = performance.now();
    const tick = () => {
      if (!this.#running) return;
      this.stream.pushFrame(frames[this.pushed % frames.length]!, {
        timestamp: performance.timeOrigin + performance.now(),
      });
      this.pushed += 1;
      due += period;
      const now = performance.now();
      if (due < now - period) due = now;
      this.#timer = setTimeout(tick, Math.max(0, due - now));
    };
    this.#timer = setTimeout(tick, 0);
  }

  override async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
  }
}

const camera = new BenchCamera();
// Hundreds of clients from one address (loopback): no per-address cap.
const server = new ThingServer([{ name: "camera", thing: camera }], {
  port: 0,
  limits: { streamsPerClient: 0 },
});
const url = await server.start();

process.once("SIGTERM", () => {
  void server.close().then(
    (report) => {
      console.log(
        JSON.stringify({
          shutdown: { ...report, responsesDestroyed: report.responsesDestroyed.length },
          pushed: camera.pushed,
        }),
      );
      process.exit(report.forced ? 1 : 0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});

// Only now: the bench may send SIGTERM the moment it reads this line.
console.log(JSON.stringify({ url, stream: `${url}/camera/stream`, pid: process.pid }));
