import {
  type ActionContext,
  action,
  BlobOutput,
  blobOutput,
  MjpegStream,
  mjpegStream,
  observeProperties,
  property,
  type Static,
  setting,
  Type,
  thingSlot,
} from "../../src/index.js";
import { Camera } from "../../src/instruments/roles.js";
import { Specimen } from "./specimen.js";
import { SimulatedStage } from "./stage.js";

export const Resolution = Type.Object(
  {
    width: Type.Integer({ minimum: 64, maximum: 3280, multipleOf: 2 }),
    height: Type.Integer({ minimum: 48, maximum: 2464, multipleOf: 2 }),
  },
  { additionalProperties: false },
);
export type Resolution = Static<typeof Resolution>;

export const CameraOptions = Type.Object(
  {
    width: Type.Optional(Type.Integer({ minimum: 64, maximum: 3280 })),
    height: Type.Optional(Type.Integer({ minimum: 48, maximum: 2464 })),
    fps: Type.Optional(Type.Number({ minimum: 1, maximum: 60 })),
    /** Stage z (steps) at which the specimen is in focus. */
    focusZ: Type.Optional(Type.Integer()),
    /** Stage steps of defocus per pixel of blur (depth of field). */
    stepsPerBlurPixel: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Stage steps per specimen pixel in x and y. */
    stepsPerPixel: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** Let the sensor temperature drift slowly, as a real one does (the demo does). */
    thermalDrift: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CameraOptions = Static<typeof CameraOptions>;

/** Frames per second while nobody watches: keeps the snapshot fresh at little cost. */
const IDLE_FPS = 1;
const PREVIEW_SCALE = 0.5;
const MAX_BLUR_SIGMA = 25;

/**
 * A microscope camera, simulated. It looks at a synthetic specimen on the stage (through
 * its slot): the view follows the stage's x and y and blurs with distance from a focal
 * plane in z, so autofocus has something real to find.
 */
export class SimulatedCamera extends Camera {
  static override title = "Simulated camera";
  static override description =
    "A microscope camera (simulated) looking at a synthetic specimen on the stage.";
  static options = CameraOptions;

  @thingSlot(SimulatedStage) accessor stage!: SimulatedStage;

  @mjpegStream({ title: "Live view", description: "Full-resolution live view." })
  readonly stream = new MjpegStream();

  @mjpegStream({
    title: "Preview",
    description: "Half-resolution live view, for small screens and slow links.",
  })
  readonly preview = new MjpegStream();

  readonly #focusZ: number;
  readonly #stepsPerBlurPixel: number;
  readonly #stepsPerPixel: number;
  #specimen: Promise<Specimen> | undefined;
  #specimenReady: Specimen | undefined;
  #drawing: AbortController | undefined;
  #lastCaptureAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #thermal: NodeJS.Timeout | undefined;
  #capturing: Promise<void> | undefined;
  #running = false;

  constructor(options: CameraOptions = {}) {
    super();
    this.resolution = { width: options.width ?? 640, height: options.height ?? 480 };
    this.frameRate = options.fps ?? 15;
    this.#focusZ = options.focusZ ?? 1000;
    this.#stepsPerBlurPixel = options.stepsPerBlurPixel ?? 150;
    this.#stepsPerPixel = options.stepsPerPixel ?? 10;
    this.#thermalDrift = options.thermalDrift ?? false;
    this.#temperature = this.#loadTemperature();
    // Computed properties follow stored ones: tell their observers when those change.
    observeProperties(this, (name) => {
      if (name === "resolution") this.notifyPropertyChanged("fieldOfView", this.fieldOfView);
      if (!this.#thermalDrift && (name === "exposureTime" || name === "analogGain")) this.#warm();
    });
  }

  /** Start capturing. The specimen is drawn in the background, so start-up stays fast. */
  override async start(): Promise<void> {
    this.#drawing = new AbortController();
    const specimen = Specimen.create({ signal: this.#drawing.signal });
    this.#specimen = specimen;
    specimen.then(
      (ready) => {
        this.#specimenReady = ready;
      },
      (error: unknown) => {
        if (!this.#drawing?.signal.aborted)
          this.logger.error({ err: error }, "cannot draw the specimen");
      },
    );
    this.#running = true;
    this.#schedule(0);
    if (this.#thermalDrift) this.#thermal = setInterval(() => this.#warm(), 1000);
  }

  /** Stop the capture loop and wait for the frame being encoded. */
  override async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#thermal);
    this.#drawing?.abort();
    clearTimeout(this.#timer);
    await this.#capturing;
  }

  /** Blur, in pixels, of the view at stage height `z`. */
  blurAt(z: number): number {
    return Math.min(MAX_BLUR_SIGMA, Math.abs(z - this.#focusZ) / this.#stepsPerBlurPixel);
  }

  /**
   * Tick at the frame rate; while nobody watches, render only every 1/IDLE_FPS s. A
   * viewer or a `nextFrame()` waiter is then served within one frame interval.
   */
  #schedule(delayMs: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      const started = performance.now();
      const watched = this.stream.watched || this.preview.watched;
      const idleDue = started - this.#lastCaptureAt >= 1000 / IDLE_FPS;
      const work = watched || idleDue ? this.#capture(!watched) : Promise.resolve();
      this.#capturing = work.finally(() => {
        // Fixed rate, not fixed gap; a late frame is not made up for (no backlog).
        this.#schedule(Math.max(0, 1000 / this.frameRate - (performance.now() - started)));
      });
    }, delayMs);
  }

  /**
   * Capture a full-quality still as a JPEG, with the state of every Thing on the server
   * (stage position, camera settings, …) in its EXIF ImageDescription as JSON.
   */
  @action({
    output: blobOutput("image/jpeg"),
    title: "Capture",
    description:
      "Capture a full-quality JPEG still; EXIF ImageDescription holds every Thing's state as JSON.",
  })
  async capture(_input: undefined, ctx: ActionContext): Promise<BlobOutput> {
    const specimen = await this.#specimen;
    if (!specimen) throw new Error("the camera is not started");
    ctx.signal.throwIfAborted();
    const state = { capturedAt: new Date().toISOString(), things: this.readServerState() };
    const jpeg = await specimen.render({
      ...this.#view(specimen),
      quality: 95,
      description: JSON.stringify(state),
    });
    ctx.logger.info(
      `captured ${this.resolution.width}×${this.resolution.height}, ${jpeg.length} bytes`,
    );
    return BlobOutput.fromBytes(jpeg, "image/jpeg");
  }

  /** What the sensor sees now: the window over the specimen, its blur and brightness. */
  #view(specimen: Specimen) {
    const { x, y, z } = this.stage.position;
    const brightness = (this.exposureTime / 10_000) * this.analogGain;
    const gains: [number, number, number] = [
      brightness * (this.colourGains.red / 1.6),
      brightness,
      brightness * (this.colourGains.blue / 1.4),
    ];
    return {
      centreX: specimen.size / 2 + x / this.#stepsPerPixel,
      centreY: specimen.size / 2 + y / this.#stepsPerPixel,
      width: this.resolution.width,
      height: this.resolution.height,
      blurSigma: this.blurAt(z),
      gains,
    };
  }

  /** @param idle nobody watches: refresh both streams, so each snapshot stays current. */
  async #capture(idle: boolean): Promise<void> {
    // Until the specimen is drawn there is nothing to show (and stop() must not wait for it).
    const specimen = this.#specimenReady;
    if (!specimen || !this.#running) return;
    this.#lastCaptureAt = performance.now();
    const timestamp = performance.timeOrigin + this.#lastCaptureAt;
    const view = this.#view(specimen);
    try {
      const jpeg = await specimen.render(view);
      this.stream.pushFrame(jpeg, { timestamp });
      if (idle || this.preview.watched) {
        const preview = await specimen.render({ ...view, scale: PREVIEW_SCALE });
        this.preview.pushFrame(preview, { timestamp });
      }
    } catch (error) {
      this.logger.error({ err: error }, "frame capture failed");
    }
  }

  @setting({
    schema: Type.Integer({ minimum: 10, maximum: 1_000_000, unit: "µs" }),
    title: "Exposure time",
    description: "Sensor exposure per frame in microseconds.",
  })
  accessor exposureTime = 10_000;

  @setting({ schema: Type.Number({ minimum: 1, maximum: 16 }), title: "Analogue gain" })
  accessor analogGain = 1;

  @property({
    schema: Resolution,
    title: "Resolution",
    description: "Size of streamed frames in pixels.",
  })
  accessor resolution: Resolution;

  @property({ schema: Type.Number({ minimum: 1, maximum: 60, unit: "Hz" }), title: "Frame rate" })
  accessor frameRate: number;

  @setting({
    schema: Type.Object(
      {
        red: Type.Number({ minimum: 0, maximum: 8 }),
        blue: Type.Number({ minimum: 0, maximum: 8 }),
      },
      { additionalProperties: false },
    ),
    title: "Colour gains",
    description: "White balance: gains of the red and blue channels relative to green.",
  })
  accessor colourGains = { red: 1.6, blue: 1.4 };

  /** Computed from the resolution: a client turns a point on the image into a stage move. */
  @property({
    schema: Type.Object(
      {
        width: Type.Number({ unit: "steps" }),
        height: Type.Number({ unit: "steps" }),
      },
      { additionalProperties: false },
    ),
    readOnly: true,
    // Announced whenever the resolution changes (see the constructor).
    observable: true,
    title: "Field of view",
    description:
      "Width and height of the view in stage steps (the same for every stream of this camera); the dashboard's click-to-move uses it.",
  })
  get fieldOfView(): { width: number; height: number } {
    return {
      width: this.resolution.width * this.#stepsPerPixel,
      height: this.resolution.height * this.#stepsPerPixel,
    };
  }

  /** Simulated sensor temperature, unrounded; with thermal drift it lags behind the load. */
  #temperature: number;
  readonly #thermalDrift: boolean;

  @property({
    schema: Type.Number({ unit: "°C" }),
    readOnly: true,
    observable: true,
    title: "Sensor temperature",
    description: "Warms slowly with exposure time and gain (simulated), announced as it changes.",
  })
  get sensorTemperature(): number {
    return Math.round(this.#temperature * 10) / 10;
  }

  /** What exposure and gain warm the sensor to. */
  #loadTemperature(): number {
    const load = Math.min(1, this.exposureTime / 200_000) + (this.analogGain - 1) / 30;
    return 24 + 8 * load;
  }

  /**
   * Follow the load: at once without drift, else one second of warming or cooling
   * (time constant 20 s, and the room's own slow swing). Observers hear each change.
   */
  #warm(): void {
    const before = this.sensorTemperature;
    this.#temperature = this.#thermalDrift
      ? this.#temperature +
        (this.#loadTemperature() + 0.3 * Math.sin(Date.now() / 15_000) - this.#temperature) / 20
      : this.#loadTemperature();
    if (this.sensorTemperature !== before)
      this.notifyPropertyChanged("sensorTemperature", this.sensorTemperature);
  }
}
