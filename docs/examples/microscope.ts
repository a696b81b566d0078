// #region things
import {
  type ActionContext,
  action,
  event,
  MjpegStream,
  mjpegStream,
  property,
  type Static,
  setting,
  Thing,
  ThingEvent,
  Type,
  thingSlot,
} from "labthings-ts";

const Position = Type.Object({ x: Type.Integer(), y: Type.Integer(), z: Type.Integer() });
type Position = Static<typeof Position>;

/** A motor driver stand-in: one step at a time, each taking 1 ms. */
class Motors {
  readonly steps = { x: 0, y: 0, z: 0 };

  async step(axis: keyof Position, direction: 1 | -1, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted(); // a real driver would stop the motor here
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.steps[axis] += direction;
  }
}

export class Stage extends Thing {
  static override title = "Motorised stage";
  readonly #motors = new Motors();

  /** Read-only over the network; the Thing's own code assigns it, and observers are told. */
  @property({ schema: Position, readOnly: true, title: "Position" })
  accessor position: Position = { x: 0, y: 0, z: 0 };

  /** A setting: PUT 20001 answers 400 naming the field and the rule; saved across restarts. */
  @setting({ schema: Type.Number({ minimum: 1, maximum: 20000, unit: "steps/s" }) })
  accessor speed = 2000;

  /** Computed: a getter (add a setter to make it writable). */
  @property({ schema: Type.Boolean(), readOnly: true })
  get atOrigin() {
    return this.position.x === 0 && this.position.y === 0;
  }

  /** A long, cancellable action: progress, a kept log, and a lock so moves never overlap. */
  @action({ input: Type.Partial(Position), output: Position, lock: "stage" })
  async moveAbsolute(target: Partial<Position>, ctx: ActionContext) {
    for (const [done, axis] of (["x", "y", "z"] as const).entries()) {
      const to = target[axis] ?? this.position[axis];
      while (this.position[axis] !== to) {
        const direction = to > this.position[axis] ? 1 : -1;
        await this.#motors.step(axis, direction, ctx.signal); // the driver gets the signal
        this.position = { ...this.position, [axis]: this.position[axis] + direction };
      }
      ctx.progress((done + 1) / 3, `${axis}=${to}`);
    }
    ctx.logger.info(`arrived at ${JSON.stringify(this.position)}`);
    return this.position;
  }

  // #region event
  @event({ data: Type.Object({ celsius: Type.Number() }), title: "Overheated" })
  readonly overheated = new ThingEvent<{ celsius: number }>();

  /** Called by the driver's temperature reading; the data is validated (bad data throws). */
  onTemperature(celsius: number) {
    if (celsius > 80) this.overheated.emit({ celsius });
  }
  // #endregion event

  override async start() {
    /* open the hardware */
  }
  override async stop() {
    /* park and release it: always runs at shutdown */
  }
}

export class Camera extends Thing {
  /** Filled by the server with the one Stage it serves (or the one named in the config). */
  @thingSlot(Stage) accessor stage!: Stage;

  @mjpegStream({ title: "Live view" })
  readonly stream = new MjpegStream();

  /** Called by the capture loop with each JPEG from the sensor. */
  onFrame(jpeg: Buffer) {
    this.stream.pushFrame(jpeg); // fanned out to every viewer; non-JPEG input throws
  }
}

// #endregion things

// #region server
import { ThingServer } from "labthings-ts";

/** Serve both on a port (0: any free one); `await server.close()` shuts down as Ctrl-C does. */
export async function serveMicroscope(port = 5000): Promise<ThingServer> {
  const server = new ThingServer(
    [
      { name: "stage", thing: new Stage() },
      { name: "camera", thing: new Camera() },
    ],
    { port }, // add settingsDir: "settings" to keep @setting values across restarts
  );
  console.log(await server.start()); // http://127.0.0.1:5000
  return server;
}
// #endregion server
