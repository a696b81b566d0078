import { setTimeout as delay } from "node:timers/promises";
import {
  type ActionContext,
  action,
  event,
  property,
  type Static,
  setting,
  ThingEvent,
  Type,
} from "../../src/index.js";
import { displaced, type MoveOptions, Position, Stage } from "../../src/instruments/roles.js";

export { type MoveOptions, Position };

export const LimitReached = Type.Object(
  {
    requested: Position,
    reached: Position,
  },
  { additionalProperties: false },
);

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

/** How often a move updates `position` (and so observers and the camera's view). */
const MOVE_TICK_MS = 20;

/**
 * A three-axis motorised stage, simulated. Moves take as long as the distance at
 * `speed` (axes move together); a cancelled move stops where the stage is, and
 * `position` says so.
 */
export class SimulatedStage extends Stage {
  static override title = "Simulated stage";
  static override description =
    "A three-axis motorised microscope stage (simulated), positions in motor steps.";
  /** Validated by the server before the constructor sees them. */
  static options = StageOptions;

  override readonly range: { x: number; y: number; z: number };

  constructor(options: StageOptions = {}) {
    super();
    this.range = options.range ?? { x: 10000, y: 10000, z: 10000 };
  }

  @property({
    schema: Position,
    readOnly: true,
    title: "Position",
    description: "Current position in motor steps.",
  })
  accessor position: Position = { x: 0, y: 0, z: 0 };

  @setting({
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
    // Fixed at construction: there is never a change to announce.
    observable: true,
    title: "Travel range",
    description: "Each axis moves between -range and +range steps.",
  })
  get travelRange() {
    return this.range;
  }

  /** Move by a displacement in steps (missing axes stay put). Exclusive with other moves. */
  @action({
    input: Type.Partial(Position),
    output: Position,
    lock: "stage",
    title: "Move relative",
    description:
      "Move by a displacement in motor steps; missing axes stay put. Cancelling stops where the stage is.",
  })
  async moveRelative(displacement: Partial<Position>, ctx: ActionContext): Promise<Position> {
    return this.moveTo(displaced(this.position, displacement), progressReporter(ctx));
  }

  /** Move to a position in steps (missing axes stay put). Exclusive with other moves. */
  @action({
    input: Type.Partial(Position),
    output: Position,
    lock: "stage",
    title: "Move absolute",
    description:
      "Move to a position in motor steps; missing axes stay put. Cancelling stops where the stage is.",
  })
  async moveAbsolute(target: Partial<Position>, ctx: ActionContext): Promise<Position> {
    return this.moveTo({ ...this.position, ...target }, progressReporter(ctx));
  }

  /**
   * The motion itself, for actions of this and other Things (autofocus) that hold the
   * "stage" lock. Resolves with the final position; on abort, rejects and leaves
   * `position` where the stage stopped.
   */
  /** A move asked for a position outside the travel range and stopped at its edge. */
  @event({
    data: LimitReached,
    title: "Travel limit reached",
    description:
      "A move was clamped to the travel range: where it was asked to go, and where it stops.",
  })
  readonly limitReached = new ThingEvent<Static<typeof LimitReached>>();

  async moveTo(target: Position, options: MoveOptions = {}): Promise<Position> {
    const from = this.position;
    const to = this.clamp(target);
    if (to.x !== target.x || to.y !== target.y || to.z !== target.z) {
      this.limitReached.emit({ requested: target, reached: to });
    }
    const distance = Math.max(
      Math.abs(to.x - from.x),
      Math.abs(to.y - from.y),
      Math.abs(to.z - from.z),
    );
    const durationMs = (distance / this.speed) * 1000;
    const started = performance.now();
    for (;;) {
      options.signal?.throwIfAborted();
      const fraction =
        durationMs === 0 ? 1 : Math.min(1, (performance.now() - started) / durationMs);
      const at = (a: number, b: number) => Math.round(a + (b - a) * fraction);
      this.position = { x: at(from.x, to.x), y: at(from.y, to.y), z: at(from.z, to.z) };
      options.onProgress?.(fraction, this.position);
      if (fraction >= 1) return this.position;
      await sleep(Math.min(MOVE_TICK_MS, durationMs), options.signal);
    }
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

function progressReporter(ctx: ActionContext): MoveOptions {
  return {
    signal: ctx.signal,
    onProgress: (fraction, { x, y, z }) => ctx.progress(fraction, `at x=${x} y=${y} z=${z}`),
  };
}

/** Sleep that ends early, rejecting with the signal's reason, when it aborts. */
async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await delay(ms, undefined, { signal }).catch((error: unknown) => {
    throw signal?.reason ?? error;
  });
}
