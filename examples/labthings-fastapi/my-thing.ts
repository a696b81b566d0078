/**
 * labthings-fastapi's example Thing `MyThing` (its `labthings_fastapi/example_things`,
 * the Thing its `example_config.json` serves), ported affordance for affordance: the same
 * names, inputs, defaults, outputs and behaviour, so its Python `ThingClient` scripts
 * (`counter.increment_counter()`, `thing.make_a_dict(extra_key="k")`, …) run unchanged.
 * docs/coming-from-labthings-fastapi.md shows the two side by side.
 *
 * Serve it: `labthings-ts serve --config examples/labthings-fastapi/config.json`.
 */
import { type ActionContext, action, property, type Static, Thing, Type } from "../../src/index.js";

const AnactionInput = Type.Object(
  {
    repeats: Type.Integer({ description: "The number of times to try the action" }),
    undocumented: Type.Integer(),
    title: Type.Optional(
      Type.String({ description: "the title of the invocation", default: "Untitled" }),
    ),
    attempts: Type.Optional(
      Type.Union([Type.Array(Type.String()), Type.Null()], {
        description: "Names for each attempt - I suggest final, Final, FINAL.",
      }),
    ),
  },
  { additionalProperties: false },
);

// #region inputs
const MakeADictInput = Type.Object(
  {
    extra_key: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    extra_value: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  { additionalProperties: false },
);

const SlowlyIncreaseInput = Type.Object(
  {
    increments: Type.Optional(Type.Integer({ minimum: 0, default: 60 })),
    delay: Type.Optional(Type.Number({ minimum: 0, default: 1, unit: "s" })),
  },
  { additionalProperties: false },
);
// #endregion inputs

/** An example Thing with a few affordances. */
// #region properties
export class MyThing extends Thing {
  static override title = "MyThing";
  static override description = "An example Thing with a few affordances.";

  @property({ schema: Type.Integer(), readOnly: true, description: "A pointless counter" })
  accessor counter = 0;

  @property({ schema: Type.String(), description: "A pointless string for demo purposes." })
  accessor foo = "Example";
  // #endregion properties

  @action({
    input: AnactionInput,
    output: Type.Record(Type.String(), Type.String()),
    description:
      "Quite a complicated action.\n\nThis action has lots of parameters and is designed to confuse my schema generator. I hope it doesn't!",
  })
  anaction(_input: Static<typeof AnactionInput>): Record<string, string> {
    // Actions are methods: one may call another directly.
    this.increment_counter();
    return { end_result: "finished!!" };
  }

  // #region dict
  @action({
    input: MakeADictInput,
    output: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])),
    description: "Do something that returns a dict.",
  })
  make_a_dict(input: Static<typeof MakeADictInput>): Record<string, string | null> {
    const out: Record<string, string | null> = { key: "value" };
    if (input.extra_key !== undefined && input.extra_key !== null) {
      out[input.extra_key] = input.extra_value ?? null;
    }
    return out;
  }

  @action({
    description:
      "Increment the counter property.\n\nThis action doesn't do very much - all it does, in fact, is increment the counter (which may be read using the `counter` property).",
  })
  increment_counter(): void {
    this.counter += 1;
  }
  // #endregion dict

  // #region slow
  /** Upstream sleeps with `time.sleep`; `ctx.sleep` ends at once when cancelled. */
  @action({
    input: SlowlyIncreaseInput,
    description: "Increment the counter slowly over a minute.",
  })
  async slowly_increase_counter(
    input: Static<typeof SlowlyIncreaseInput>,
    ctx: ActionContext,
  ): Promise<void> {
    const increments = input.increments ?? 60;
    const delay = input.delay ?? 1;
    for (let i = 0; i < increments; i++) {
      await ctx.sleep(delay * 1000);
      this.increment_counter();
      ctx.progress((i + 1) / increments);
    }
  }
  // #endregion slow

  @action({ description: "Do something that takes no arguments." })
  action_without_arguments(): void {}

  @action({
    input: Type.Object({}, { additionalProperties: true }),
    description: "Do something that takes **kwargs.",
  })
  action_with_only_kwargs(_kwargs: Record<string, unknown>): void {}
}
