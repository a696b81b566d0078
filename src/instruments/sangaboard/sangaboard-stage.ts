/**
 * The OpenFlexure motor board (Sangaboard, firmware v1) as a stage Thing, over serial:
 * a worked example of a serial Thing on `SerialLineDevice`.
 *
 * The firmware's protocol (as labthings-sangaboard and pysangaboard speak it): commands
 * end with "\n", replies with "\r\n"; `version` → `Sangaboard Firmware v1.0.4`;
 * `blocking_moves false` makes `mr x y z` answer `done.` at once, after which `moving?`
 * (→ `true`/`false`) and `p?` (→ `x y z`) follow the move and `stop` ends it.
 */
import {
  type ActionContext,
  action,
  property,
  type Static,
  Type,
  UnavailableError,
} from "../../index.js";
import { displaced, type MoveOptions, Position, Stage } from "../roles.js";
import { type SerialChannel, SerialLineDevice } from "../serial/serial-line-device.js";

export const SangaboardStageOptions = Type.Object(
  {
    port: Type.String({ minLength: 1, description: "The board's serial port, e.g. /dev/ttyACM0" }),
    baudRate: Type.Optional(Type.Integer({ minimum: 300, description: "Default 115200" })),
    timeoutMs: Type.Optional(
      Type.Integer({ minimum: 10, description: "Time allowed for each reply; default 2000" }),
    ),
    pollIntervalMs: Type.Optional(
      Type.Integer({
        minimum: 10,
        description: "How often a move asks where the stage is; default 100",
      }),
    ),
    reconnectDelayMs: Type.Optional(Type.Integer({ minimum: 10 })),
    maxReconnectDelayMs: Type.Optional(Type.Integer({ minimum: 10 })),
  },
  { additionalProperties: false },
);
export type SangaboardStageOptions = Static<typeof SangaboardStageOptions>;

const VERSION = /^(Sangaboard Firmware|OpenFlexure Motor Board) v(\d+)\.(\d+)(?:\.(\d+))?/;
const POSITION = /^(-?\d+) (-?\d+) (-?\d+)\s*$/;
const MOVING = /^(true|false)\s*$/;
/** What the firmware says to a command it does not know, or cannot do. */
const ERROR_REPLY = /^(Type 'help'|Invalid command|Error:|Command not recognised)/;

export class SangaboardStage extends Stage {
  static override title = "Sangaboard stage";
  static override description =
    "The OpenFlexure motor board (Sangaboard, firmware v1): a three-axis stage in motor steps.";
  static options = SangaboardStageOptions;

  readonly #options: SangaboardStageOptions;
  readonly #pollIntervalMs: number;
  #serial: SerialLineDevice | undefined;

  constructor(options: SangaboardStageOptions) {
    super();
    this.port = options.port;
    this.#options = options;
    this.#pollIntervalMs = options.pollIntervalMs ?? 100;
  }

  /** The serial line to the board; made at start, when the Thing has its logger. */
  get #device(): SerialLineDevice {
    if (!this.#serial) throw new UnavailableError(`the Sangaboard on ${this.port} is not started`);
    return this.#serial;
  }

  #makeDevice(): SerialLineDevice {
    const options = this.#options;
    return new SerialLineDevice({
      path: options.port,
      baudRate: options.baudRate ?? 115200,
      timeoutMs: options.timeoutMs ?? 2000,
      errorReply: ERROR_REPLY,
      reconnectDelayMs: options.reconnectDelayMs ?? 250,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 5000,
      onConnect: (channel) => this.#handshake(channel),
      onStatus: ({ connected, error }) => {
        this.connected = connected;
        if (error !== undefined) this.lastError = error;
        if (connected) this.markAvailable();
        else this.markUnavailable(`the Sangaboard on ${this.port} is not connected (${error})`);
      },
      logger: this.logger,
    });
  }

  @property({ schema: Type.String(), readOnly: true, title: "Serial port" })
  accessor port: string;

  @property({
    schema: Type.Boolean(),
    readOnly: true,
    title: "Connected",
    description: "The board answers on its port (it reconnects by itself when it comes back).",
  })
  accessor connected = false;

  @property({
    schema: Type.Union([Type.String(), Type.Null()]),
    readOnly: true,
    title: "Last error",
    description: "Why the board was last unreachable, or null.",
  })
  accessor lastError: string | null = null;

  @property({
    schema: Type.Union([Type.String(), Type.Null()]),
    readOnly: true,
    title: "Firmware version",
    description: "The board's reply to `version`, e.g. 'Sangaboard Firmware v1.0.4'.",
  })
  accessor version: string | null = null;

  @property({
    schema: Type.Union([Type.String(), Type.Null()]),
    readOnly: true,
    title: "Board",
    description:
      "The board's `board` reply, e.g. 'Sangaboard v0.5.5' (null on firmware without it).",
  })
  accessor board: string | null = null;

  @property({
    schema: Type.Union([Type.Integer({ unit: "µs" }), Type.Null()]),
    readOnly: true,
    title: "Step delay",
    description: "The board's minimum time between steps (`dt?`), which sets its top speed.",
  })
  accessor stepDelay: number | null = null;

  @property({
    schema: Position,
    readOnly: true,
    title: "Position",
    description: "Where the motors are, in steps (read from the board; followed during moves).",
  })
  accessor position: Position = { x: 0, y: 0, z: 0 };

  @property({ schema: Type.Boolean(), readOnly: true, title: "Moving" })
  accessor moving = false;

  override async start(): Promise<void> {
    this.markUnavailable(`the Sangaboard on ${this.port} is not connected yet`);
    this.#serial = this.#makeDevice();
    await this.#device.open();
    if (!this.#device.connected) {
      this.logger.error(
        { port: this.port },
        `the Sangaboard on ${this.port} is not connected (${this.#device.lastError}); retrying in the background`,
      );
    }
  }

  override async stop(): Promise<void> {
    await this.#serial?.close();
  }

  /** What runs on every (re)connection: check the firmware, make moves non-blocking, read state. */
  async #handshake(channel: SerialChannel): Promise<void> {
    // A board may print its version (or other lines) at power-up; asking is what counts.
    let version: string | undefined;
    for (let attempt = 0; attempt < 3 && !version; attempt++) {
      version = await channel
        .query("version", { expect: VERSION, timeoutMs: 1500 })
        .catch(() => undefined);
    }
    if (!version) throw new Error("no Sangaboard firmware version reply (is this a Sangaboard?)");
    const major = Number(VERSION.exec(version)![2]);
    if (major < 1) {
      throw new Error(`'${version}' is too old: SangaboardStage needs Sangaboard firmware v1`);
    }
    // Each reply is matched, so a power-up line arriving late cannot pass for another's.
    await channel.query("blocking_moves false", { expect: /^(done|blocking_moves)/ });
    const board = await channel
      .query("board", { expect: /^(?!Sangaboard Firmware|OpenFlexure Motor Board|done)/ })
      .catch(() => null);
    const delay = await channel
      .query("dt?", { expect: /^minimum step delay -?\d+/ })
      .catch(() => null);
    const position = parsePosition(await channel.query("p?", { expect: POSITION }));
    const moving = (await channel.query("moving?", { expect: MOVING })).startsWith("true");
    this.version = version.trim();
    this.board = board?.trim() ?? null;
    this.stepDelay = delay ? Number(/-?\d+/.exec(delay)![0]) : null;
    this.position = position;
    this.moving = moving;
    this.logger.info(
      { port: this.port, version: this.version, board: this.board },
      `connected to ${this.version} on ${this.port}`,
    );
  }

  /** Move by a displacement in steps (missing axes stay put). Cancelling stops the motors. */
  @action({
    input: Type.Partial(Position),
    output: Position,
    lock: "stage",
    title: "Move relative",
    description:
      "Move by a displacement in motor steps; missing axes stay put. Cancelling stops the motors where they are.",
  })
  async moveRelative(displacement: Partial<Position>, ctx: ActionContext): Promise<Position> {
    return this.moveTo(displaced(await this.#readPosition(), displacement), progressReporter(ctx));
  }

  /** Move to a position in steps (missing axes stay put). Cancelling stops the motors. */
  @action({
    input: Type.Partial(Position),
    output: Position,
    lock: "stage",
    title: "Move absolute",
    description:
      "Move to a position in motor steps; missing axes stay put. Cancelling stops the motors where they are.",
  })
  async moveAbsolute(target: Partial<Position>, ctx: ActionContext): Promise<Position> {
    const here = await this.#readPosition();
    return this.moveTo({ ...here, ...target }, progressReporter(ctx));
  }

  /** Make the current position (0, 0, 0) without moving. */
  @action({ output: Position, lock: "stage", title: "Zero position" })
  async zeroPosition(): Promise<Position> {
    await this.#device.query("zero"); // any reply: "position reset to 0 0 0" on v1
    return this.#readPosition();
  }

  /** De-energise the motor coils (they stay where they are, and stop warming up). */
  @action({ lock: "stage", title: "Release motors" })
  async releaseMotors(): Promise<void> {
    await this.#device.query("release");
  }

  /**
   * The motion, for this Thing's actions and for other Things' actions that hold the
   * "stage" lock (autofocus). Resolves where the stage stopped; on abort it sends `stop`,
   * reads where the motors are, and rejects with the signal's reason.
   */
  async moveTo(target: Position, options: MoveOptions = {}): Promise<Position> {
    const { signal, onProgress } = options;
    signal?.throwIfAborted();
    const from = await this.#readPosition();
    const d = { x: target.x - from.x, y: target.y - from.y, z: target.z - from.z };
    const total = Math.max(Math.abs(d.x), Math.abs(d.y), Math.abs(d.z));
    if (total === 0) {
      onProgress?.(1, from);
      return from;
    }
    await this.#device.query(`mr ${d.x} ${d.y} ${d.z}`, { expect: /^done/ });
    this.moving = true;
    try {
      for (;;) {
        await sleep(this.#pollIntervalMs, signal);
        const moving = (await this.#device.query("moving?", { expect: MOVING })).startsWith("true");
        const at = await this.#readPosition();
        const left = Math.max(
          Math.abs(target.x - at.x),
          Math.abs(target.y - at.y),
          Math.abs(target.z - at.z),
        );
        onProgress?.(moving ? Math.min(1, 1 - left / total) : 1, at);
        if (!moving) return at;
      }
    } catch (error) {
      if (signal?.aborted) {
        // Cancelled: stop the motors, then say where they stopped.
        // Any reply ("Move aborted" on v1): nothing else is in flight on our line now.
        await this.#device.query("stop").catch(() => undefined);
        await this.#readPosition().catch(() => undefined);
        throw signal.reason;
      }
      if (error instanceof UnavailableError) {
        throw new UnavailableError(
          `the Sangaboard on ${this.port} was lost during the move: ${error.message}`,
        );
      }
      throw error;
    } finally {
      this.moving = false;
    }
  }

  async #readPosition(): Promise<Position> {
    const position = parsePosition(await this.#device.query("p?", { expect: POSITION }));
    const { x, y, z } = this.position;
    if (position.x !== x || position.y !== y || position.z !== z) this.position = position;
    return position;
  }
}

function parsePosition(reply: string): Position {
  const [, x, y, z] = POSITION.exec(reply)!;
  return { x: Number(x), y: Number(y), z: Number(z) };
}

function progressReporter(ctx: ActionContext): MoveOptions {
  return {
    signal: ctx.signal,
    onProgress: (fraction, { x, y, z }) => ctx.progress(fraction, `at x=${x} y=${y} z=${z}`),
  };
}

/** Wait `ms`, rejecting with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
