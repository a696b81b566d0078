/**
 * A small Thing that is not a microscope, for the dashboard tests: properties with rules
 * the page checks itself (limits, enum) and one only the server checks (an e-mail
 * `format`), an action with an object input of every kind (integer, enum, boolean) that
 * reports progress and logs, an event, and a live MJPEG stream of a plain test card.
 */
import sharp from "sharp";
import {
  type ActionContext,
  action,
  event,
  MjpegStream,
  mjpegStream,
  property,
  type Static,
  Thing,
  ThingEvent,
  Type,
} from "../../src/index.js";

const Colour = Type.Unsafe<"white" | "red" | "blue">({
  type: "string",
  enum: ["white", "red", "blue"],
});

export const BlinkInput = Type.Object(
  {
    times: Type.Integer({ minimum: 1, maximum: 10, description: "How many blinks" }),
    colour: Type.Optional(Colour),
    fast: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Frames per second of the test card stream. */
const FPS = 5;

export class Lamp extends Thing {
  static override title = "Lamp";
  static override description = "A lamp on another server, for the dashboard tests.";

  @property({ schema: Type.Number({ minimum: 0, maximum: 1 }), title: "Brightness" })
  accessor brightness = 0.5;

  @property({ schema: Colour, title: "Colour" })
  accessor colour: "white" | "red" | "blue" = "white";

  /** The page does not check formats: this one is refused by the server alone. */
  @property({ schema: Type.String({ format: "email" }), title: "Contact" })
  accessor contact = "lab@example.org";

  @event({ data: Type.Object({ times: Type.Integer() }), title: "Blinked" })
  readonly blinked = new ThingEvent<{ times: number }>();

  @mjpegStream({ title: "Test card" })
  readonly card = new MjpegStream();

  #timer: NodeJS.Timeout | undefined;

  @action({
    input: BlinkInput,
    output: Type.Object({ blinked: Type.Integer(), colour: Type.String() }),
    title: "Blink",
  })
  async blink(input: Static<typeof BlinkInput>, ctx: ActionContext) {
    for (let i = 0; i < input.times; i++) {
      ctx.progress(i / input.times, `blink ${i + 1} of ${input.times}`);
      ctx.logger.info(`blink ${i + 1}`);
      await ctx.sleep(input.fast ? 10 : 50);
    }
    ctx.progress(1, "done");
    this.blinked.emit({ times: input.times });
    return { blinked: input.times, colour: input.colour ?? this.colour };
  }

  override async start(): Promise<void> {
    const jpeg = await sharp({
      create: { width: 160, height: 120, channels: 3, background: { r: 40, g: 120, b: 200 } },
    })
      .jpeg()
      .toBuffer();
    this.#timer = setInterval(() => this.card.pushFrame(jpeg), 1000 / FPS);
  }

  override async stop(): Promise<void> {
    clearInterval(this.#timer);
  }
}
