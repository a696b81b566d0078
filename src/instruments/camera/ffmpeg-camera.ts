/**
 * A camera fed by ffmpeg: a USB/V4L2 webcam (`device`), or any source ffmpeg can read
 * (`input`: an RTSP or HTTP IP camera, a file, a test pattern).
 */
import { ConflictError, type Static, Type } from "../../index.js";
import { type CaptureCommand, ProcessCamera, ProcessCameraOptions } from "./process-camera.js";

export const FfmpegCameraOptions = Type.Object(
  {
    device: Type.Optional(
      Type.String({ minLength: 1, description: "A V4L2 device, e.g. /dev/video0" }),
    ),
    input: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 2,
        description:
          'The ffmpeg arguments that describe the source (everything before the output), e.g. ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"]',
      }),
    ),
    inputFormat: Type.Optional(
      Type.String({
        minLength: 1,
        description: "V4L2 pixel format asked of the device (ffmpeg -input_format); default mjpeg",
      }),
    ),
    passthrough: Type.Optional(
      Type.Boolean({
        description:
          "Pass the source's JPEGs through unchanged (-c:v copy). Default: when the source delivers MJPEG",
      }),
    ),
    ffmpegPath: Type.Optional(Type.String({ minLength: 1, description: "The ffmpeg to run" })),
    ...ProcessCameraOptions,
  },
  { additionalProperties: false },
);
export type FfmpegCameraOptions = Static<typeof FfmpegCameraOptions>;

/** ffmpeg's mjpeg encoder takes -q:v 2 (best) … 31 (worst); map JPEG-style 1…100 onto it. */
export function ffmpegQscale(quality: number): number {
  return Math.round(2 + ((100 - quality) * 29) / 99);
}

/** True when `input` says its video is MJPEG already (`-f mjpeg`, `-input_format mjpeg`, …). */
function declaresMjpeg(input: readonly string[]): boolean {
  const iIndex = input.lastIndexOf("-i");
  return input.some(
    (arg, index) =>
      (index < iIndex || iIndex < 0) &&
      /^(-f|-input_format|-c:v|-vcodec|-codec:v)$/.test(arg) &&
      /^(mjpeg|mpjpeg|jpeg_pipe)$/.test(input[index + 1] ?? ""),
  );
}

/**
 * A camera whose frames come from an `ffmpeg` child process. MJPEG sources pass through
 * untouched (`-c:v copy`: the bytes the camera made are the bytes served); others are
 * encoded at `quality`. Resolution, frame rate and quality are properties; changing one
 * restarts ffmpeg, and viewers stay connected.
 *
 * @example
 * ```json
 * "camera": { "class": "labthings-ts/instruments#FfmpegCamera",
 *             "options": { "device": "/dev/video0", "width": 1280, "height": 720, "fps": 30 } }
 * ```
 */
export class FfmpegCamera extends ProcessCamera {
  static override title = "Camera (ffmpeg)";
  static override description =
    "A camera read through ffmpeg (a USB webcam, an IP camera, a file or a test pattern).";
  static options = FfmpegCameraOptions;

  readonly #options: FfmpegCameraOptions;
  readonly passthrough: boolean;

  constructor(options: FfmpegCameraOptions = {}) {
    super(options, { width: 1280, height: 720, fps: 30 });
    if ((options.device === undefined) === (options.input === undefined)) {
      throw new Error(
        "FfmpegCamera needs exactly one of 'device' (e.g. /dev/video0) or 'input' (ffmpeg arguments)",
      );
    }
    if (options.input && !options.input.includes("-i")) {
      throw new Error("FfmpegCamera 'input' must contain '-i' and the source after it");
    }
    this.#options = options;
    this.passthrough =
      options.passthrough ??
      (options.device !== undefined
        ? (options.inputFormat ?? "mjpeg") === "mjpeg"
        : declaresMjpeg(options.input!));
  }

  get source(): string {
    if (this.#options.device) return this.#options.device;
    const input = this.#options.input!;
    return input[input.lastIndexOf("-i") + 1] ?? input.join(" ");
  }

  /** A passed-through generic source decides its own size and rate: nothing to change. */
  protected override checkChange(name: "resolution" | "frameRate" | "quality"): void {
    if (!this.passthrough) return;
    if (name === "quality") {
      throw new ConflictError(
        `${this.source} is passed through unchanged: its JPEGs keep the quality the source gave them`,
      );
    }
    if (this.#options.input) {
      throw new ConflictError(
        `${this.source} is passed through unchanged, so its ${name} is the source's own; set passthrough: false to have ffmpeg scale it`,
      );
    }
  }

  protected captureCommand(): CaptureCommand {
    const { width, height } = this.resolution;
    const input = this.#options.device
      ? [
          "-f",
          "v4l2",
          "-input_format",
          this.#options.inputFormat ?? "mjpeg",
          "-video_size",
          `${width}x${height}`,
          "-framerate",
          String(this.frameRate),
          "-i",
          this.#options.device,
        ]
      : this.#options.input!;
    const filters: string[] = [];
    // A generic source has its own size and rate; scale it only when asked to.
    if (this.#options.input && !this.passthrough) {
      if (this.resolutionAsked) filters.push(`scale=${width}:${height}`);
      if (this.frameRateAsked) filters.push(`fps=${this.frameRate}`);
    }
    const output = this.passthrough
      ? ["-c:v", "copy"]
      : [
          ...(filters.length > 0 ? ["-vf", filters.join(",")] : []),
          "-pix_fmt",
          "yuvj420p",
          "-c:v",
          "mjpeg",
          "-q:v",
          String(ffmpegQscale(this.quality)),
        ];
    return {
      command: this.#options.ffmpegPath ?? "ffmpeg",
      args: [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        ...input,
        "-map",
        "0:v:0",
        "-an",
        ...output,
        "-f",
        "mjpeg",
        // Write each frame as soon as it is made, not when ffmpeg's output buffer fills.
        "-flush_packets",
        "1",
        "pipe:1",
      ],
    };
  }
}
