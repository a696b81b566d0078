import {
  type ActionContext,
  action,
  event,
  property,
  setting,
  Thing,
  ThingEvent,
  Type,
} from "labthings-ts";

/** A lamp that blinks: a first Thing, to change into your own instrument. */
export class Lamp extends Thing {
  static override title = "Lamp";

  /** Observable: every assignment is pushed to SSE and websocket observers. */
  @property({ schema: Type.Boolean(), readOnly: true, title: "On" })
  accessor on = false;

  /** A setting: validated on write, saved to settings/lamp.json, restored at start. */
  @setting({ schema: Type.Number({ minimum: 0, maximum: 1 }), title: "Brightness" })
  accessor brightness = 0.5;

  /** An event: its data is checked against the schema, then sent to every subscriber. */
  @event({ data: Type.Object({ times: Type.Integer() }), title: "Blinked" })
  readonly blinked = new ThingEvent<{ times: number }>();

  /** A long action: progress, cancellable with DELETE (or Ctrl-C of the server). */
  @action({ input: Type.Object({ times: Type.Integer({ minimum: 1, maximum: 20 }) }) })
  async blink({ times }: { times: number }, ctx: ActionContext) {
    for (let i = 1; i <= 2 * times; i++) {
      this.on = !this.on;
      ctx.progress(i / (2 * times), this.on ? "on" : "off");
      await ctx.sleep(250); // ends early when the invocation is cancelled
    }
    this.blinked.emit({ times });
  }
}
