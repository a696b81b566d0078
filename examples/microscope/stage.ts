import { property, type Static, Thing, Type } from "../../src/index.js";

export const Position = Type.Object(
  {
    x: Type.Integer({ description: "Motor steps along x" }),
    y: Type.Integer({ description: "Motor steps along y" }),
    z: Type.Integer({ description: "Motor steps along z (focus)" }),
  },
  { additionalProperties: false },
);
export type Position = Static<typeof Position>;

export const StageOptions = Type.Object(
  {
    /** Travel limit on each axis, in steps from the origin. */
    range: Type.Optional(
      Type.Object(
        {
          x: Type.Integer({ minimum: 1 }),
          y: Type.Integer({ minimum: 1 }),
          z: Type.Integer({ minimum: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type StageOptions = Static<typeof StageOptions>;

/**
 * A three-axis motorised stage, simulated. It moves instantly for now; moves with
 * speed, progress and cancellation arrive with actions.
 */
export class SimulatedStage extends Thing {
  static override title = "Simulated stage";
  static override description =
    "A three-axis motorised microscope stage (simulated), positions in motor steps.";
  /** Validated by the server before the constructor sees them. */
  static options = StageOptions;

  readonly range: { x: number; y: number; z: number };

  constructor(options: StageOptions = {}) {
    super();
    this.range = options.range ?? { x: 20000, y: 20000, z: 10000 };
  }

  @property({
    schema: Position,
    readOnly: true,
    title: "Position",
    description: "Current position in motor steps.",
  })
  accessor position: Position = { x: 0, y: 0, z: 0 };

  @property({
    schema: Type.Number({ minimum: 1, maximum: 20000, unit: "steps/s" }),
    title: "Speed",
    description: "Steps per second used by moves.",
  })
  accessor speed = 2000;

  @property({
    schema: Type.Object(
      {
        x: Type.Integer({ minimum: 1 }),
        y: Type.Integer({ minimum: 1 }),
        z: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    readOnly: true,
    title: "Travel range",
    description: "Each axis moves between -range and +range steps.",
  })
  get travelRange() {
    return this.range;
  }

  /** Clamp a target to the travel range. */
  clamp(target: Position): Position {
    const limit = (value: number, max: number) => Math.max(-max, Math.min(max, Math.round(value)));
    return {
      x: limit(target.x, this.range.x),
      y: limit(target.y, this.range.y),
      z: limit(target.z, this.range.z),
    };
  }
}
