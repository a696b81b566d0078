/**
 * A camera whose frames come from a child process writing concatenated JPEGs to its
 * stdout (ffmpeg, rpicam-vid). It supervises that process: splits its output into
 * frames for `stream`, derives the low-resolution `preview`, watches for faults (the
 * process exits, or no frame arrives within a bound), says so (`connected`, `lastError`,
 * a log line with the program's last stderr line, 503 from `snapshot` and `capture`),
 * and restarts it with a growing delay until it recovers. Viewers stay connected
 * throughout: their streams never end, they just wait for frames.
 *
 * Subclasses say which program to run (`captureCommand()`), and may replace `capture`.
 */
import sharp from "sharp";
import {
  type ActionContext,
  action,
  BlobOutput,
  blobOutput,
  ConflictError,
  type Frame,
  MjpegStream,
  mjpegStream,
  property,
  type Static,
  Type,
  UnavailableError,
} from "../../index.js";
import { type ProcessExit, SupervisedProcess } from "../process/supervised-process.js";
import { Camera } from "../roles.js";
import { insertExif } from "./exif.js";
import { JpegSplitter, jpegDimensions } from "./jpeg-splitter.js";

export const Resolution = Type.Object(
  {
    width: Type.Integer({ minimum: 16, maximum: 8192 }),
    height: Type.Integer({ minimum: 16, maximum: 8192 }),
  },
  { additionalProperties: false },
);
export type Resolution = Static<typeof Resolution>;

/** Options every process camera takes (validated by the server against `static options`). */
export const ProcessCameraOptions = {
  width: Type.Optional(Type.Integer({ minimum: 16, maximum: 8192 })),
  height: Type.Optional(Type.Integer({ minimum: 16, maximum: 8192 })),
  fps: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 240 })),
  quality: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 100, description: "JPEG quality when encoding" }),
  ),
  previewWidth: Type.Optional(
    Type.Integer({
      minimum: 16,
      maximum: 4096,
      description: "Width of the preview stream; default half the stream's, at most 640",
    }),
  ),
  stepsPerPixel: Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      description: "Stage steps per image pixel (calibration), for fieldOfView",
    }),
  ),
  startTimeoutMs: Type.Optional(
    Type.Integer({ minimum: 100, description: "Longest wait for the first frame of a run" }),
  ),
  frameTimeoutMs: Type.Optional(
    Type.Integer({ minimum: 100, description: "Longest gap between frames before a restart" }),
  ),
  restartDelayMs: Type.Optional(
    Type.Integer({ minimum: 10, description: "First delay before a restart (doubles each time)" }),
  ),
  maxRestartDelayMs: Type.Optional(Type.Integer({ minimum: 10 })),
  killAfterMs: Type.Optional(
    Type.Integer({ minimum: 10, description: "Wait after SIGTERM before SIGKILL" }),
  ),
};

/** The options above as one type (from the schema, so the two cannot drift apart). */
export type ProcessCameraSettings = Static<ReturnType<typeof processCameraSettings>>;
const processCameraSettings = () => Type.Object(ProcessCameraOptions);

/** The program a camera runs, and what the log and errors call its source. */
export interface CaptureCommand {
  command: string;
  args: string[];
}

const WATCHDOG_TICK_MS = 200;
/** A run that has delivered frames this long resets the restart delay. */
const HEALTHY_AFTER_MS = 10_000;
/**
 * Refresh the preview this often while nobody watches it, so its snapshot stays fairly
 * current: a downscale costs ~15 ms of CPU, so once a second would cost a passthrough
 * camera about as much as serving the stream (bench:camera).
 */
const IDLE_PREVIEW_MS = 5000;
/** The preview's frame rate at most, while watched. */
const PREVIEW_MAX_FPS = 15;

export abstract class ProcessCamera extends Camera {
  @mjpegStream({ title: "Live view", description: "Full-resolution live view." })
  readonly stream = new MjpegStream();

  @mjpegStream({
    title: "Preview",
    description: "Low-resolution live view, for small screens and slow links.",
  })
  readonly preview = new MjpegStream();

  protected readonly settings: Required<
    Omit<ProcessCameraSettings, "width" | "height" | "fps" | "previewWidth">
  > & { previewWidth: number | undefined };
  #resolution: Resolution;
  #frameRate: number;
  /** The resolution / frame rate was asked for (options or a write), not just reported by the source. */
  protected resolutionAsked: boolean;
  protected frameRateAsked: boolean;
  #quality: number;

  #running = false;
  #process: SupervisedProcess | undefined;
  /** Bumped for each run: output and exits of an older run are ignored. */
  #run = 0;
  #runStartedAt = 0;
  #firstFrameAt: number | undefined;
  #lastFrameAt = 0;
  #restartDelay: number;
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #restartSoon: NodeJS.Timeout | undefined;
  /** Old runs still being stopped; `stop()` waits for them. */
  readonly #ending = new Set<Promise<unknown>>();
  #previewBusy = false;
  #previewAt = 0;
  /** Set while a subclass holds the camera for something else (a still capture). */
  #paused = false;

  constructor(
    options: ProcessCameraSettings,
    defaults: { width: number; height: number; fps: number },
  ) {
    super();
    this.#resolution = {
      width: options.width ?? defaults.width,
      height: options.height ?? defaults.height,
    };
    this.#frameRate = options.fps ?? defaults.fps;
    this.resolutionAsked = options.width !== undefined || options.height !== undefined;
    this.frameRateAsked = options.fps !== undefined;
    this.#quality = options.quality ?? 85;
    this.settings = {
      quality: this.#quality,
      previewWidth: options.previewWidth,
      stepsPerPixel: options.stepsPerPixel ?? 10,
      startTimeoutMs: options.startTimeoutMs ?? 15_000,
      frameTimeoutMs: options.frameTimeoutMs ?? 5000,
      restartDelayMs: options.restartDelayMs ?? 1000,
      maxRestartDelayMs: options.maxRestartDelayMs ?? 30_000,
      killAfterMs: options.killAfterMs ?? 2000,
    };
    this.#restartDelay = this.settings.restartDelayMs;
  }

  /** The program to run for the live stream, built from the current properties. */
  protected abstract captureCommand(): CaptureCommand;

  /** What the camera captures from, for logs and errors (a device path, an URL, …). */
  abstract get source(): string;

  /**
   * Whether a change of `name` (resolution, frameRate, quality) can be applied; throw a
   * ConflictError saying why not. The default accepts every change.
   */
  protected checkChange(_name: "resolution" | "frameRate" | "quality"): void {}

  @property({
    schema: Type.Boolean(),
    readOnly: true,
    title: "Connected",
    description: "Frames are arriving from the source.",
  })
  accessor connected = false;

  @property({
    schema: Type.Union([Type.String(), Type.Null()]),
    readOnly: true,
    title: "Last error",
    description: "Why the source last failed (kept after it recovers), or null.",
  })
  accessor lastError: string | null = null;

  @property({
    schema: Type.String(),
    readOnly: true,
    title: "Source",
    description: "What the camera captures from.",
  })
  get sourceName(): string {
    return this.source;
  }

  @property({
    schema: Resolution,
    observable: true,
    title: "Resolution",
    description: "Size of streamed frames in pixels; a change restarts the capture.",
  })
  get resolution(): Resolution {
    return this.#resolution;
  }
  set resolution(value: Resolution) {
    this.checkChange("resolution");
    this.#resolution = { width: value.width, height: value.height };
    this.resolutionAsked = true;
    this.#scheduleRestart();
  }

  @property({
    schema: Type.Number({ exclusiveMinimum: 0, maximum: 240, unit: "Hz" }),
    observable: true,
    title: "Frame rate",
    description: "Frames per second asked of the source; a change restarts the capture.",
  })
  get frameRate(): number {
    return this.#frameRate;
  }
  set frameRate(value: number) {
    this.checkChange("frameRate");
    this.#frameRate = value;
    this.frameRateAsked = true;
    this.#scheduleRestart();
  }

  @property({
    schema: Type.Integer({ minimum: 1, maximum: 100 }),
    observable: true,
    title: "JPEG quality",
    description: "Quality of the JPEGs the capture encodes (1–100); a change restarts it.",
  })
  get quality(): number {
    return this.#quality;
  }
  set quality(value: number) {
    this.checkChange("quality");
    this.#quality = value;
    this.#scheduleRestart();
  }

  /** Computed from the resolution: a client turns a point on the image into a stage move. */
  @property({
    schema: Type.Object(
      { width: Type.Number({ unit: "steps" }), height: Type.Number({ unit: "steps" }) },
      { additionalProperties: false },
    ),
    readOnly: true,
    title: "Field of view",
    description:
      "Width and height of the view in stage steps (resolution × the stepsPerPixel calibration); the dashboard's click-to-move uses it.",
  })
  get fieldOfView(): { width: number; height: number } {
    return {
      width: this.#resolution.width * this.settings.stepsPerPixel,
      height: this.#resolution.height * this.settings.stepsPerPixel,
    };
  }

  /**
   * Capture the next full-resolution frame as a JPEG, unchanged but for an EXIF block
   * whose ImageDescription holds every Thing's state (stage position, camera settings…)
   * as JSON. Refused with 503 while the source is down.
   */
  @action({
    output: blobOutput("image/jpeg"),
    title: "Capture",
    description:
      "Capture the next full-resolution frame as a JPEG; EXIF ImageDescription holds every Thing's state as JSON.",
  })
  async capture(_input: undefined, ctx: ActionContext): Promise<BlobOutput> {
    const frame = await this.nextFrameWithin(this.settings.frameTimeoutMs, ctx.signal);
    const jpeg = insertExif(frame.jpeg, { description: this.stateDescription() });
    const size = jpegDimensions(frame.jpeg);
    ctx.logger.info(`captured ${size?.width}×${size?.height}, ${jpeg.length} bytes`);
    return BlobOutput.fromBytes(jpeg, "image/jpeg");
  }

  /** The JSON stored with a capture: when, and every Thing's properties. */
  protected stateDescription(): string {
    return JSON.stringify({ capturedAt: new Date().toISOString(), things: this.readServerState() });
  }

  /** The next frame of `stream`, or a 503 naming the source if none comes in time. */
  protected async nextFrameWithin(ms: number, signal: AbortSignal): Promise<Frame> {
    const timeout = AbortSignal.timeout(ms);
    try {
      return await this.stream.nextFrame({ signal: AbortSignal.any([signal, timeout]) });
    } catch (error) {
      if (timeout.aborted && !signal.aborted) {
        throw new UnavailableError(`no frame from ${this.source} within ${ms} ms`);
      }
      throw error;
    }
  }

  override async start(): Promise<void> {
    this.#running = true;
    // Not installed is a mistake to report now, not a fault to retry forever.
    this.#startRun({ throwIfMissing: true });
    this.#watchdog = setInterval(() => this.#checkFrames(), WATCHDOG_TICK_MS);
  }

  override async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#watchdog);
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#restartSoon);
    this.#endRun();
    await Promise.all(this.#ending);
  }

  /**
   * Stop the live capture so another program can use the camera (rpicam-still), run
   * `task`, then start the capture again. Viewers stay connected; the gap is no fault.
   */
  protected async whilePaused<T>(task: () => Promise<T>): Promise<T> {
    if (this.#paused) throw new ConflictError(`${this.source} is busy with another capture`);
    this.#paused = true;
    try {
      this.#endRun();
      await Promise.all(this.#ending);
      return await task();
    } finally {
      this.#paused = false;
      if (this.#running && !this.#restartTimer) this.#startRun();
    }
  }

  /** Restart with the new properties once the current burst of writes is over. */
  #scheduleRestart(): void {
    if (!this.#running) return;
    clearTimeout(this.#restartSoon);
    this.#restartSoon = setTimeout(() => {
      if (!this.#running || this.#paused) return;
      this.logger.info(`restarting capture from ${this.source} with new settings`);
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
      this.#endRun();
      this.#startWhenFree();
    }, 20);
  }

  /**
   * Start the next run once every old process has exited: a V4L2 device or the Pi camera
   * stays busy until then, so a process started beside the old one would fail to open it.
   */
  #startWhenFree(): void {
    const run = this.#run;
    void Promise.all(this.#ending).then(() => {
      if (run === this.#run && this.#running && !this.#paused) this.#startRun();
    });
  }

  #startRun({ throwIfMissing = false } = {}): void {
    const run = ++this.#run;
    const { command, args } = this.captureCommand();
    let child: SupervisedProcess;
    try {
      child = new SupervisedProcess({
        command,
        args,
        killAfterMs: this.settings.killAfterMs,
        logger: this.logger,
      });
    } catch (error) {
      if (throwIfMissing) throw error;
      this.#fault(run, (error as Error).message, undefined);
      return;
    }
    this.#process = child;
    this.#runStartedAt = performance.now();
    this.#firstFrameAt = undefined;
    this.logger.debug({ command, args, pid: child.pid }, `capture started: ${command}`);
    const splitter = new JpegSplitter();
    child.stdout.on("data", (chunk: Buffer) => {
      if (run !== this.#run) return;
      // When the frame fully left the process: its last byte is in this chunk.
      const timestamp = performance.timeOrigin + performance.now();
      try {
        for (const jpeg of splitter.push(chunk)) this.#onFrame(jpeg, timestamp);
      } catch (error) {
        // A bad frame must never take the server down from inside a stream handler.
        this.logger.warn({ err: error, source: this.source }, "frame dropped");
      }
    });
    child.exited.then((exit) => {
      if (run !== this.#run || exit.stopped) return;
      this.#fault(run, describeExit(command, exit), exit.lastStderrLine, exit.stderrTail);
    });
  }

  /** Stop the current process (bounded: SIGKILL after killAfterMs), in the background. */
  #endRun(): void {
    this.#run += 1;
    const child = this.#process;
    this.#process = undefined;
    if (!child) return;
    const ending = child.stop().finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
  }

  #onFrame(jpeg: Buffer, timestamp: number): void {
    const now = performance.now();
    this.#lastFrameAt = now;
    if (this.#firstFrameAt === undefined) {
      this.#firstFrameAt = now;
      this.#adoptFrameSize(jpeg);
      if (!this.connected) {
        if (this.lastError !== null) this.logger.info(`camera source ${this.source} is back`);
        this.connected = true;
        this.markAvailable();
      }
    }
    this.stream.pushFrame(jpeg, { timestamp });
    this.#updatePreview(jpeg, timestamp, now);
  }

  /** The source decides in the end (a driver may pick the nearest size): show what it sends. */
  #adoptFrameSize(jpeg: Buffer): void {
    const size = jpegDimensions(jpeg);
    if (!size) return;
    if (size.width !== this.#resolution.width || size.height !== this.#resolution.height) {
      const asked = this.resolutionAsked
        ? ` (${this.#resolution.width}×${this.#resolution.height} was asked)`
        : "";
      this.logger.info(`${this.source} delivers ${size.width}×${size.height}${asked}`);
      this.#resolution = size;
      this.notifyPropertyChanged("resolution", size);
      this.notifyPropertyChanged("fieldOfView", this.fieldOfView);
    }
  }

  /** Downscale in libvips' thread pool, one frame at a time, only as often as needed. */
  #updatePreview(jpeg: Buffer, timestamp: number, now: number): void {
    if (this.#previewBusy) return;
    const interval = this.preview.watched ? 1000 / PREVIEW_MAX_FPS : IDLE_PREVIEW_MS;
    if (now - this.#previewAt < interval) return;
    this.#previewBusy = true;
    this.#previewAt = now;
    const full = this.#resolution.width;
    // Default: half the stream's width (as OpenFlexure's lores stream), at most 640.
    const width = Math.min(this.settings.previewWidth ?? Math.min(640, Math.round(full / 2)), full);
    sharp(jpeg)
      .resize({ width })
      .jpeg({ quality: 75 })
      .toBuffer()
      .then((small) => this.preview.pushFrame(small, { timestamp }))
      .catch((error: unknown) => this.logger.warn({ err: error }, "preview frame failed"))
      .finally(() => {
        this.#previewBusy = false;
      });
  }

  #checkFrames(): void {
    if (!this.#running || !this.#process || this.#paused) return;
    const now = performance.now();
    if (this.#firstFrameAt === undefined) {
      const waited = now - this.#runStartedAt;
      if (waited > this.settings.startTimeoutMs) {
        this.#fault(
          this.#run,
          `no frame from ${this.source} within ${Math.round(waited)} ms of starting`,
          this.#process.lastStderrLine,
        );
      }
      return;
    }
    const gap = now - this.#lastFrameAt;
    if (gap > this.settings.frameTimeoutMs) {
      this.#fault(
        this.#run,
        `no frame from ${this.source} for ${Math.round(gap)} ms`,
        this.#process.lastStderrLine,
      );
    } else if (now - this.#firstFrameAt > HEALTHY_AFTER_MS) {
      this.#restartDelay = this.settings.restartDelayMs;
    }
  }

  /** The source failed: say so everywhere, stop what is left of it, retry later. */
  #fault(
    run: number,
    reason: string,
    lastStderrLine: string | undefined,
    stderrTail: string[] = lastStderrLine ? [lastStderrLine] : [],
  ): void {
    if (run !== this.#run || !this.#running) return;
    this.#endRun();
    const message =
      lastStderrLine && !reason.includes(lastStderrLine) ? `${reason}: ${lastStderrLine}` : reason;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(this.settings.maxRestartDelayMs, delay * 2);
    this.logger.error(
      { source: this.source, stderr: stderrTail.slice(-5), retryInMs: delay },
      `camera source ${this.source} lost: ${message}; restarting in ${delay} ms`,
    );
    this.lastError = message;
    this.connected = false;
    const why = `camera source ${this.source} is not delivering frames (${message})`;
    this.stream.interrupt(why);
    this.preview.interrupt(why);
    this.markUnavailable(why);
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#startWhenFree();
    }, delay);
  }
}

function describeExit(command: string, exit: ProcessExit): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `${command} ${how}`;
}
