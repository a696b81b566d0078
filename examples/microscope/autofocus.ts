import {
  type ActionContext,
  action,
  type Static,
  Thing,
  Type,
  thingSlot,
} from "../../src/index.js";
import { Camera, Stage } from "../../src/instruments/roles.js";

export const AutofocusInput = Type.Object(
  {
    range: Type.Optional(
      Type.Integer({
        minimum: 10,
        maximum: 20000,
        description: "Total z travel of the coarse sweep, in steps",
      }),
    ),
    steps: Type.Optional(
      Type.Integer({ minimum: 3, maximum: 101, description: "Positions in the coarse sweep" }),
    ),
  },
  { additionalProperties: false },
);

export const AutofocusResult = Type.Object(
  {
    z: Type.Integer({ description: "Stage z chosen as the best focus" }),
    sharpness: Type.Number({ description: "Score there (JPEG bytes)" }),
    scores: Type.Array(Type.Object({ z: Type.Integer(), sharpness: Type.Number() })),
  },
  { additionalProperties: false },
);
type AutofocusResult = Static<typeof AutofocusResult>;

/**
 * Autofocus as OpenFlexure does it: sweep z, score each position by the size of the
 * stream's JPEG (sharper images compress worse), move to the best, then refine with a
 * finer sweep around it.
 */
export class Autofocus extends Thing {
  static override title = "Autofocus";
  static override description =
    "Finds the focal plane by sweeping the stage in z and scoring the camera's JPEG sizes.";

  // Roles, not classes: a webcam and a Sangaboard fill these as well as the simulations.
  @thingSlot(Camera) accessor camera!: Camera;
  @thingSlot(Stage) accessor stage!: Stage;

  /**
   * Autofocus scores the scene as it is when it runs: queued behind a long move or scan it
   * would run later on a scene nobody chose, so it waits at most 2 s for the stage and
   * otherwise fails as lock busy (labthings-fastapi's `GlobalLockBusyError`).
   */
  @action({
    input: AutofocusInput,
    output: AutofocusResult,
    lock: { name: "stage", waitMs: 2000 },
    title: "Run autofocus",
    description:
      "Coarse sweep over `range` in `steps` positions around the current z, then a fine sweep; ends at the sharpest z. Waits at most 2 s for the stage; fails if the sweep would leave the stage's z travel.",
  })
  async run(input: Static<typeof AutofocusInput>, ctx: ActionContext): Promise<AutofocusResult> {
    const range = input.range ?? 3000;
    const steps = input.steps ?? 31;
    const start = this.stage.position.z;
    // A stage that knows its z travel (a Sangaboard does not) bounds the sweep.
    const limit = this.stage.range?.z ?? Number.POSITIVE_INFINITY;
    if (start - range / 2 < -limit || start + range / 2 > limit) {
      // Clamped positions would score the same place twice and bias the focus to the edge.
      throw new RangeError(
        `a sweep of ${range} steps around z=${start} leaves the stage's z travel (±${limit} steps): move nearer the middle or sweep less`,
      );
    }
    const coarseStep = range / (steps - 1);
    const coarse = positions(start - range / 2, coarseStep, steps);
    const fineStep = Math.max(1, Math.round(coarseStep / 5));
    const total = coarse.length + 11;
    const scores: { z: number; sharpness: number }[] = [];

    const sweep = async (zs: number[]) => {
      const found: { z: number; sharpness: number }[] = [];
      for (const z of zs) {
        const at = await this.stage.moveTo({ ...this.stage.position, z }, { signal: ctx.signal });
        const sharpness = await this.#scoreAfterMove(ctx.signal);
        found.push({ z: at.z, sharpness });
        scores.push({ z: at.z, sharpness });
        ctx.progress(scores.length / total, `z=${at.z}: ${sharpness} bytes`);
      }
      return found;
    };

    const best = plateauCentre(await sweep(coarse));
    ctx.logger.info(`coarse sweep: best z=${best}`);
    const fine = positions(best - 5 * fineStep, fineStep, 11);
    const finest = plateauCentre(await sweep(fine));
    const final = await this.stage.moveTo(
      { ...this.stage.position, z: finest },
      { signal: ctx.signal },
    );
    const sharpness = await this.#scoreAfterMove(ctx.signal);
    ctx.progress(1, `in focus at z=${final.z}`);
    ctx.logger.info(`fine sweep: best z=${final.z} (${sharpness} bytes)`);
    return { z: final.z, sharpness, scores };
  }

  /** JPEG size of a frame captured after the stage stopped (the next frame may predate it). */
  async #scoreAfterMove(signal: AbortSignal): Promise<number> {
    const settledAt = performance.timeOrigin + performance.now();
    for (;;) {
      const frame = await this.camera.stream.nextFrame({ signal });
      if (frame.timestamp >= settledAt) return frame.jpeg.length;
    }
  }
}

function positions(from: number, step: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.round(from + i * step));
}

/** The z of the highest score; over a flat top (several equal scores), its middle. */
function plateauCentre(scores: { z: number; sharpness: number }[]): number {
  const max = Math.max(...scores.map((s) => s.sharpness));
  // JPEG sizes wobble by a few bytes; treat scores within 0.5 % of the best as equal.
  const top = scores.filter((s) => s.sharpness >= max * 0.995).map((s) => s.z);
  return Math.round((Math.min(...top) + Math.max(...top)) / 2);
}
