/**
 * An emulator of the OpenFlexure Sangaboard's firmware (v1), for trying SangaboardStage
 * without hardware and for the tests. It answers on a serial port as the real board does
 * (read from the firmware's source): commands end with "\n" and are matched by prefix in
 * the firmware's order; replies end with "\r\n"; moves take `max steps × step delay`;
 * it prints its version line at power-up; moves block (reply "stopped" at the end) until
 * `blocking_moves false`, after which `mr` answers "done." at once and `moving?` tells.
 *
 * Run it on one end of a pseudo-terminal pair, and point the stage at the other:
 *
 *   socat -d -d pty,raw,echo=0,link=/tmp/board pty,raw,echo=0,link=/tmp/host &
 *   npx tsx examples/sangaboard-emulator.ts /tmp/board          # (built: node dist/examples/…js)
 *   # config: "stage": { "class": "labthings-ts/instruments#SangaboardStage", "options": { "port": "/tmp/host" } }
 *
 * Killing socat unplugs the board; starting it again plugs it back in (the emulator
 * reopens the port and prints its version line, as a board that was power-cycled).
 */
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { ReadlineParser } from "@serialport/parser-readline";
import { SerialPort } from "serialport";

export interface SangaboardEmulatorOptions {
  /** The serial port (a pty end) the board answers on. */
  path: string;
  /** Minimum step delay in µs (`dt`): one step per axis at most this often. Default 1000. */
  stepDelayUs?: number;
  /** The `version` reply and power-up line. */
  firmware?: string;
  /** The `board` reply. */
  board?: string;
}

type Vector = [number, number, number];

export class SangaboardEmulator {
  readonly firmware: string;
  readonly board: string;
  stepDelayUs: number;
  rampTimeUs = 0;
  /** Moves answer at the end ("stopped") until `blocking_moves false`, as a fresh board's EEPROM says. */
  nonBlockingMoves = false;
  /** Every command line received, in order. */
  readonly received: string[] = [];
  #position: Vector = [0, 0, 0];
  #move: { from: Vector; displacement: Vector; startedAt: number; durationMs: number } | undefined;
  #notifyOnStop = false;
  #port: SerialPort | undefined;
  #running = false;
  #reopenTimer: NodeJS.Timeout | undefined;
  #moveTimer: NodeJS.Timeout | undefined;

  constructor(readonly options: SangaboardEmulatorOptions) {
    this.firmware = options.firmware ?? "Sangaboard Firmware v1.0.4";
    this.board = options.board ?? "Sangaboard v0.5.5";
    this.stepDelayUs = options.stepDelayUs ?? 1000;
  }

  /** Where the motors are now, in steps. */
  get position(): Vector {
    this.#advance();
    return [...this.#position];
  }

  get moving(): boolean {
    this.#advance();
    return this.#move !== undefined;
  }

  /** Open the port (and keep reopening it whenever it goes away) until `stop()`. */
  async start(): Promise<void> {
    this.#running = true;
    await this.#open();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#reopenTimer);
    clearTimeout(this.#moveTimer);
    const port = this.#port;
    this.#port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  async #open(): Promise<void> {
    if (!this.#running) return;
    if (!existsSync(this.options.path)) return this.#reopenLater();
    const port = new SerialPort({ path: this.options.path, baudRate: 115200, autoOpen: false });
    try {
      await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    } catch {
      return this.#reopenLater();
    }
    this.#port = port;
    port.on("error", () => {});
    port.on("close", () => {
      if (this.#port === port) {
        this.#port = undefined;
        this.#reopenLater();
      }
    });
    port
      .pipe(new ReadlineParser({ delimiter: "\n", encoding: "latin1" }))
      .on("data", (line: string) => {
        if (this.#port === port) this.#handle(line.replace(/\r$/, ""));
      });
    // Power-up: the firmware's setup() ends by printing its version.
    this.#println(this.firmware);
  }

  #reopenLater(): void {
    if (!this.#running) return;
    clearTimeout(this.#reopenTimer);
    this.#reopenTimer = setTimeout(() => void this.#open(), 50);
  }

  #println(text: string): void {
    this.#port?.write(`${text}\r\n`, "latin1");
  }

  /** Commands in the firmware's registration order: the first prefix that matches wins. */
  #handle(command: string): void {
    this.received.push(command);
    const commands: [string, (args: string[]) => void][] = [
      ["version", () => this.#println(this.firmware)],
      ["board", () => this.#println(this.board)],
      ["list_modules", () => this.#println("--END--")],
      ["help", () => this.#help()],
      ["mrx", ([n]) => this.#startMove([int(n), 0, 0])],
      ["mry", ([n]) => this.#startMove([0, int(n), 0])],
      ["mrz", ([n]) => this.#startMove([0, 0, int(n)])],
      ["mr", ([x, y, z]) => this.#startMove([int(x), int(y), int(z)])],
      ["release", () => this.#println("done")],
      ["p", () => this.#println(this.position.join(" "))],
      [
        "ramp_time",
        ([v]) =>
          this.#numberSetting(
            v,
            "ramp_time ",
            () => this.rampTimeUs,
            (n) => {
              this.rampTimeUs = n;
            },
          ),
      ],
      ["min_step_delay", ([v]) => this.#stepDelay(v)],
      ["dt", ([v]) => this.#stepDelay(v)],
      [
        "zero",
        () => {
          this.#advance();
          this.#position = [0, 0, 0];
          this.#println("position reset to 0 0 0");
        },
      ],
      [
        "stop",
        () => {
          this.#advance();
          this.#move = undefined;
          clearTimeout(this.#moveTimer);
          this.#println("Move aborted");
        },
      ],
      ["moving", () => this.#println(this.moving ? "true" : "false")],
      [
        "notify_on_stop",
        () => {
          if (!this.moving) this.#println("Error: stage is not moving");
          else this.#notifyOnStop = true;
        },
      ],
      [
        "blocking_moves",
        ([v]) => {
          if (v?.startsWith("?"))
            this.#println(`blocking_moves ${this.nonBlockingMoves ? "false" : "true"}`);
          else {
            this.nonBlockingMoves = !v?.startsWith("t");
            this.#println("done.");
          }
        },
      ],
    ];
    for (const [prefix, run] of commands) {
      if (command.startsWith(prefix)) {
        run(command.slice(prefix.length).trim().split(/ +/).filter(Boolean));
        return;
      }
    }
    this.#println("Type 'help' for a list of commands.");
  }

  #stepDelay(value: string | undefined): void {
    this.#numberSetting(
      value,
      "minimum step delay ",
      () => this.stepDelayUs,
      (n) => {
        this.stepDelayUs = n;
      },
    );
  }

  #numberSetting(
    value: string | undefined,
    label: string,
    get: () => number,
    set: (n: number) => void,
  ): void {
    if (value === undefined || value.startsWith("?")) this.#println(`${label}${get()}`);
    else {
      set(int(value));
      this.#println("done.");
    }
  }

  #help(): void {
    for (const line of [
      "",
      `Board: ${this.board}`,
      "",
      "Commands (terminated by a newline character):",
      "mr <d> <d> <d>",
      "p?",
      "moving?",
      "stop",
      "version",
      "--END--",
    ]) {
      this.#println(line);
    }
  }

  #startMove(displacement: Vector): void {
    this.#advance();
    const steps = Math.max(...displacement.map(Math.abs));
    const durationMs = (steps * this.stepDelayUs + (steps > 0 ? 2 * this.rampTimeUs : 0)) / 1000;
    this.#move = {
      from: [...this.#position],
      displacement,
      startedAt: performance.now(),
      durationMs,
    };
    if (this.nonBlockingMoves) this.#println("done.");
    else this.#notifyOnStop = true;
    clearTimeout(this.#moveTimer);
    this.#moveTimer = setTimeout(() => this.#advance(), durationMs + 1);
  }

  /** Bring the position up to now; at the end of a move, say "stopped" if asked to. */
  #advance(): void {
    const move = this.#move;
    if (!move) return;
    const fraction =
      move.durationMs === 0
        ? 1
        : Math.min(1, (performance.now() - move.startedAt) / move.durationMs);
    this.#position = move.from.map(
      (start, i) => start + Math.trunc(move.displacement[i]! * fraction),
    ) as Vector;
    if (fraction < 1) return;
    this.#move = undefined;
    if (this.#notifyOnStop) {
      this.#notifyOnStop = false;
      this.#println("stopped");
    }
  }
}

function int(text: string | undefined): number {
  const value = Number.parseInt(text ?? "", 10);
  return Number.isFinite(value) ? value : 0;
}

// `tsx examples/sangaboard-emulator.ts PORT [--step-delay-us N]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [path, ...rest] = process.argv.slice(2);
  if (!path) {
    console.error("usage: sangaboard-emulator <serial port> [--step-delay-us N]");
    process.exit(2);
  }
  const delayAt = rest.indexOf("--step-delay-us");
  const emulator = new SangaboardEmulator({
    path,
    stepDelayUs: delayAt >= 0 ? Number(rest[delayAt + 1]) : undefined,
  });
  await emulator.start();
  console.log(`Sangaboard emulator (${emulator.firmware}) on ${path}; Ctrl-C to stop`);
  process.once("SIGINT", () => void emulator.stop().then(() => process.exit(0)));
  process.once("SIGTERM", () => void emulator.stop().then(() => process.exit(0)));
}
