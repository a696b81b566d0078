import { property, type Static, Thing, Type, thingSlot } from "../../src/index.js";
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
  },
  { additionalProperties: false },
);
export type CameraOptions = Static<typeof CameraOptions>;

/**
 * A microscope camera, simulated. It looks at the stage (through its slot) so the view
 * can follow x/y and blur with z once streaming lands.
 */
export class SimulatedCamera extends Thing {
  static override title = "Simulated camera";
  static override description =
    "A microscope camera (simulated) looking at a synthetic specimen on the stage.";
  static options = CameraOptions;

  @thingSlot(SimulatedStage) accessor stage!: SimulatedStage;

  constructor(options: CameraOptions = {}) {
    super();
    this.resolution = { width: options.width ?? 640, height: options.height ?? 480 };
    this.frameRate = options.fps ?? 15;
  }

  @property({
    schema: Type.Integer({ minimum: 10, maximum: 1_000_000, unit: "µs" }),
    title: "Exposure time",
    description: "Sensor exposure per frame in microseconds.",
  })
  accessor exposureTime = 10_000;

  @property({ schema: Type.Number({ minimum: 1, maximum: 16 }), title: "Analogue gain" })
  accessor analogGain = 1;

  @property({
    schema: Resolution,
    title: "Resolution",
    description: "Size of streamed frames in pixels.",
  })
  accessor resolution: Resolution;

  @property({ schema: Type.Number({ minimum: 1, maximum: 60, unit: "Hz" }), title: "Frame rate" })
  accessor frameRate: number;

  @property({
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

  @property({
    schema: Type.Number({ unit: "°C" }),
    readOnly: true,
    title: "Sensor temperature",
    description: "Warms slowly with exposure time and gain (simulated).",
  })
  get sensorTemperature(): number {
    const load = Math.min(1, this.exposureTime / 200_000) + (this.analogGain - 1) / 30;
    return Math.round((24 + 8 * load) * 10) / 10;
  }
}
