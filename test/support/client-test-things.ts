/**
 * A small Thing for the ThingClient tests, with one member per client behaviour the
 * microscope does not show: a counter the test sets from inside the Thing (observation),
 * a writeOnly property, synchronous actions with and without output, an action that
 * throws, and a counting action with progress and a log that waits on a gate.
 */
import { type ActionContext, action, property, Type } from "../../src/index.js";
import { CountInput, CountOutput, countInSteps, GatedThing } from "./gated-thing.js";

export class ClientBench extends GatedThing {
  static override title = "Client bench";
  static override description = "A Thing for the ThingClient tests.";

  /** Set by the tests from inside the Thing: each assignment notifies observers. */
  @property({ schema: Type.Integer(), title: "Counter" })
  accessor counter = 0;

  @property({ schema: Type.String({ maxLength: 20 }), title: "Label" })
  accessor label = "bench";

  /** Clients may set it but never read it (the test reads it from the Thing). */
  @property({ schema: Type.String(), writeOnly: true, title: "Secret" })
  accessor secret = "";

  @action({
    input: Type.Object({ a: Type.Number(), b: Type.Number() }, { additionalProperties: false }),
    output: Type.Number(),
    synchronous: true,
    title: "Add",
  })
  add(input: { a: number; b: number }): number {
    return input.a + input.b;
  }

  @action({ synchronous: true, title: "Do nothing" })
  noop(): void {}

  @action({
    input: Type.Object({ message: Type.String() }, { additionalProperties: false }),
    title: "Fail",
  })
  async fail(input: { message: string }): Promise<void> {
    throw new RangeError(input.message);
  }

  /** Counts with progress and a log record per step; pauses halfway until its gate opens. */
  @action({ input: CountInput, output: CountOutput, title: "Count" })
  async count(input: CountInput, ctx: ActionContext) {
    return countInSteps(input, this.gate(input.gate), ctx);
  }
}
