/**
 * The Raspberry Pi camera through rpicam-apps: `rpicam-vid --codec mjpeg -o -` for the
 * live stream, `rpicam-still` for full-resolution captures.
 *
 * rpicam-vid writes only its main stream to `-o` (its `--lores-width/--lores-height`
 * stream feeds the preview window and post-processing, not the output), so the
 * `preview` stream is made from the main frames by downscaling (libvips, only while
 * someone watches), as for every ProcessCamera. A still needs the camera, which
 * rpicam-vid holds: `capture` stops it, runs rpicam-still (bounded), and starts it again,
 * while viewers stay connected.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ActionContext,
  action,
  BlobOutput,
  blobOutput,
  type Static,
  Type,
  UnavailableError,
} from "../../index.js";
import { SupervisedProcess } from "../process/supervised-process.js";
import { jpegDimensions } from "./jpeg-splitter.js";
import { type CaptureCommand, ProcessCamera, ProcessCameraOptions } from "./process-camera.js";

export const RpicamCameraOptions = Type.Object(
  {
    camera: Type.Optional(
      Type.Integer({ minimum: 0, description: "Which camera (rpicam --camera); default 0" }),
    ),
    stillWidth: Type.Optional(
      Type.Integer({ minimum: 16, description: "Capture width; default the sensor's full size" }),
    ),
    stillHeight: Type.Optional(Type.Integer({ minimum: 16 })),
    stillDelayMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "rpicam-still -t: time to settle exposure before the still; default 1000",
      }),
    ),
    stillTimeoutMs: Type.Optional(
      Type.Integer({ minimum: 100, description: "Longest a still may take; default 20000" }),
    ),
    tuningFile: Type.Optional(Type.String({ minLength: 1 })),
    extraArgs: Type.Optional(
      Type.Array(Type.String(), { description: "More rpicam options, for both programs" }),
    ),
    rpicamVidPath: Type.Optional(Type.String({ minLength: 1 })),
    rpicamStillPath: Type.Optional(Type.String({ minLength: 1 })),
    ...ProcessCameraOptions,
  },
  { additionalProperties: false },
);
export type RpicamCameraOptions = Static<typeof RpicamCameraOptions>;

/**
 * @example
 * ```json
 * "camera": { "class": "labthings-ts/instruments#RpicamCamera",
 *             "options": { "width": 820, "height": 616, "fps": 30 } }
 * ```
 */
export class RpicamCamera extends ProcessCamera {
  static override title = "Raspberry Pi camera";
  static override description =
    "The Raspberry Pi camera, streamed by rpicam-vid (MJPEG) and captured by rpicam-still.";
  static options = RpicamCameraOptions;

  readonly #options: RpicamCameraOptions;

  constructor(options: RpicamCameraOptions = {}) {
    super(options, { width: 820, height: 616, fps: 30 });
    this.#options = options;
  }

  get source(): string {
    return `Raspberry Pi camera ${this.#options.camera ?? 0}`;
  }

  /** Options both programs take. */
  #commonArgs(): string[] {
    const { camera, tuningFile, extraArgs } = this.#options;
    return [
      "--nopreview",
      ...(camera !== undefined ? ["--camera", String(camera)] : []),
      ...(tuningFile ? ["--tuning-file", tuningFile] : []),
      ...(extraArgs ?? []),
    ];
  }

  protected captureCommand(): CaptureCommand {
    const { width, height } = this.resolution;
    return {
      command: this.#options.rpicamVidPath ?? "rpicam-vid",
      args: [
        ...this.#commonArgs(),
        "--timeout",
        "0",
        "--codec",
        "mjpeg",
        "--width",
        String(width),
        "--height",
        String(height),
        "--framerate",
        String(this.frameRate),
        "--quality",
        String(this.quality),
        // Write each frame out as soon as it is encoded.
        "--flush",
        "--output",
        "-",
      ],
    };
  }

  /**
   * Capture a full-resolution still with rpicam-still; its EXIF ImageDescription holds
   * every Thing's state as JSON (written by rpicam-still's `--exif`). The live stream
   * pauses meanwhile (viewers stay connected).
   */
  @action({
    output: blobOutput("image/jpeg"),
    title: "Capture",
    description:
      "Capture a full-resolution still (rpicam-still); EXIF ImageDescription holds every Thing's state as JSON.",
  })
  override async capture(_input: undefined, ctx: ActionContext): Promise<BlobOutput> {
    const dir = await mkdtemp(join(tmpdir(), "labthings-still-"));
    const file = join(dir, "still.jpg");
    const { stillWidth, stillHeight, stillDelayMs, stillTimeoutMs, rpicamStillPath } =
      this.#options;
    const command = rpicamStillPath ?? "rpicam-still";
    const args = [
      ...this.#commonArgs(),
      "--timeout",
      String(stillDelayMs ?? 1000),
      ...(stillWidth ? ["--width", String(stillWidth)] : []),
      ...(stillHeight ? ["--height", String(stillHeight)] : []),
      "--quality",
      "93",
      "--exif",
      `IFD0.ImageDescription=${this.stateDescription()}`,
      "--exif",
      "IFD0.Software=labthings-ts",
      "--output",
      file,
    ];
    try {
      const jpeg = await this.whilePaused(async () => {
        const still = new SupervisedProcess({ command, args, logger: this.logger });
        const limit = stillTimeoutMs ?? 20_000;
        const timer = setTimeout(() => void still.stop(), limit);
        const onAbort = () => void still.stop();
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        const exit = await still.exited.finally(() => {
          clearTimeout(timer);
          ctx.signal.removeEventListener("abort", onAbort);
        });
        ctx.signal.throwIfAborted();
        if (exit.code !== 0) {
          const why = exit.stopped
            ? `took longer than ${limit} ms`
            : `exited with code ${exit.code}`;
          throw new UnavailableError(
            `${command} ${why}${exit.lastStderrLine ? `: ${exit.lastStderrLine}` : ""}`,
          );
        }
        return readFile(file);
      });
      const size = jpegDimensions(jpeg);
      ctx.logger.info(`captured ${size?.width}×${size?.height}, ${jpeg.length} bytes`);
      return BlobOutput.fromBytes(jpeg, "image/jpeg");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
