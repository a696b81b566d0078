/**
 * The test Things' gates: a base class whose actions wait on gates the test opens (so
 * "while it runs" is a state the test controls), the gate input they take, the counting
 * action several test Things declare (with their own locks and titles), and serving one
 * such Thing alone (closing opens its gates first, so no action holds the close up).
 *
 * @example
 * ```ts
 * class Lab extends GatedThing {
 *   @action({ input: GateInput })
 *   async hold(input: GateInput, ctx: ActionContext) {
 *     await this.gate(input.gate).wait(ctx.signal);
 *   }
 *
 *   @action({ input: CountInput, output: CountOutput })
 *   count(input: CountInput, ctx: ActionContext) {
 *     return countInSteps(input, this.gate(input.gate), ctx);
 *   }
 * }
 * lab.gate("first").open(); // the hold invoked with { gate: "first" } returns
 * ```
 */
import {
  type ActionContext,
  Thing,
  ThingServer,
  type ThingServerOptions,
  Type,
} from "../../src/index.js";
import { Gate } from "./actions-http.js";
import { within } from "./within.js";

/** An action input naming the gate it waits on. */
export const GateInput = Type.Object({ gate: Type.String() }, { additionalProperties: false });
export type GateInput = { gate: string };

/** A Thing with named gates, each made on first use. */
export abstract class GatedThing extends Thing {
  readonly #gates = new Map<string, Gate>();

  gate(name: string): Gate {
    let gate = this.#gates.get(name);
    if (!gate) {
      gate = new Gate();
      this.#gates.set(name, gate);
    }
    return gate;
  }

  /** Lets every waiting action go on: before closing the server. */
  openAllGates(): void {
    for (const gate of this.#gates.values()) gate.open();
  }
}

/** A GatedThing on a server of its own. */
export interface ServedAlone<T extends GatedThing> {
  server: ThingServer;
  base: string;
  thing: T;
}

/** Serve `thing` as `name`, alone, on 127.0.0.1 (port 0), with `options` added. */
export async function serveAlone<T extends GatedThing>(
  name: string,
  thing: T,
  options: ThingServerOptions = {},
): Promise<ServedAlone<T>> {
  const server = new ThingServer([{ name, thing }], { port: 0, ...options });
  return { server, base: await server.start(), thing };
}

/** Open every gate, then close the server (bounded); nothing when it was never served. */
export async function closeAlone(served: ServedAlone<GatedThing> | undefined): Promise<void> {
  if (!served) return;
  served.thing.openAllGates();
  await within(served.server.close(), "server.close()");
}

/** The counting action's input: how many steps, and the gate it pauses on halfway. */
export const CountInput = Type.Object(
  { steps: Type.Integer({ minimum: 2, maximum: 100 }), gate: Type.String() },
  { additionalProperties: false },
);
export type CountInput = { steps: number; gate: string };
export const CountOutput = Type.Object(
  { counted: Type.Integer() },
  { additionalProperties: false },
);

/** Count in 2 ms steps, with progress and a log record per step; pause halfway until `gate` opens. */
export async function countInSteps(
  input: CountInput,
  gate: Gate,
  ctx: ActionContext,
): Promise<{ counted: number }> {
  for (let i = 1; i <= input.steps; i++) {
    await ctx.sleep(2);
    ctx.logger.info(`step ${i} of ${input.steps}`);
    ctx.progress(i / input.steps, `step ${i}`);
    if (i === Math.floor(input.steps / 2)) await gate.wait(ctx.signal);
  }
  return { counted: input.steps };
}
