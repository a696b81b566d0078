/**
 * The building block for line-oriented serial instruments (motor boards, pumps,
 * temperature controllers): write a command line, read its reply line.
 *
 * - One command at a time: commands queue and never interleave on the wire.
 * - A timeout per command, and an AbortSignal: a command aborted while queued is never
 *   sent; one aborted after it was sent rejects at once, and its late reply is still
 *   read and thrown away before the next command goes out.
 * - Lines that arrive while no command waits (a banner at power-up, an unsolicited
 *   notice) are dropped, and a reply that does not match what the command expects is
 *   skipped, so a stray line never becomes the answer to the wrong command.
 * - Reconnection: when the port disappears (a cable pulled, a board reset) the device
 *   reports it, fails what was pending with a 503 naming the port, and keeps trying to
 *   reopen it (with a growing delay) until it is back; `onConnect` runs again first
 *   (the handshake), before queued commands are taken.
 *
 * Built on `serialport` (prebuilt native bindings) and its ReadlineParser.
 *
 * @example
 * ```ts
 * const pump = new SerialLineDevice({ path: "/dev/ttyUSB0", baudRate: 9600,
 *   onConnect: async (device) => { await device.query("*IDN?"); } });
 * await pump.open();
 * const rate = await pump.query("RATE?", { expect: /^\d+(\.\d+)? ml\/min$/, timeoutMs: 500 });
 * ```
 */
import { ReadlineParser } from "@serialport/parser-readline";
import { SerialPort } from "serialport";
import { type ThingLogger, UnavailableError } from "../../index.js";

export interface SerialLineDeviceOptions {
  /** The port: `/dev/ttyUSB0`, `/dev/ttyACM0`, `COM3`, or a pseudo-terminal. */
  path: string;
  /** Default 115200. */
  baudRate?: number;
  /** Appended to each command. Default "\n". */
  lineEnding?: string;
  /** Default time allowed for a reply. Default 2000 ms. */
  timeoutMs?: number;
  /** A reply line matching this fails the command with a DeviceError (e.g. /^Error/). */
  errorReply?: RegExp;
  /** First delay before reopening a lost port; it doubles up to `maxReconnectDelayMs`. Default 250 ms. */
  reconnectDelayMs?: number;
  /** Default 5000 ms. */
  maxReconnectDelayMs?: number;
  /**
   * The handshake: runs after each (re)open, before any queued command, with a channel
   * whose queries go first. A throw closes the port and the device retries later.
   */
  onConnect?: (channel: SerialChannel) => Promise<void>;
  /** Told when the port connects (the first time too), and of every failure, with why. */
  onStatus?: (status: SerialStatus) => void;
  logger?: ThingLogger;
}

/** What a handshake may do: query the freshly opened port. */
export interface SerialChannel {
  readonly path: string;
  query(command: string, options?: QueryOptions): Promise<string>;
}

export interface SerialStatus {
  connected: boolean;
  /** Why it is not connected (or why it last lost the connection). */
  error?: string;
}

export interface QueryOptions {
  /** Time allowed for the reply; default the device's `timeoutMs`. */
  timeoutMs?: number;
  /** Stop waiting (or do not send, if still queued). */
  signal?: AbortSignal;
  /** The reply is the first line matching this; other lines are skipped. Default: any line. */
  expect?: RegExp;
}

/** The device answered with an error line (`errorReply`). */
export class DeviceError extends Error {
  constructor(
    readonly command: string,
    readonly reply: string,
  ) {
    super(`'${command}' was refused: ${reply}`);
  }
}

/** No reply within the time allowed. */
export class SerialTimeoutError extends Error {}

interface Pending {
  command: string;
  options: QueryOptions;
  resolve: (line: string) => void;
  reject: (error: unknown) => void;
  /** Lines to answer; the handshake runs before everyone else. */
  handshake: boolean;
}

interface InFlight {
  pending: Pending;
  expect: RegExp | undefined;
  timer: NodeJS.Timeout;
  /** The caller gave up (abort): the reply is awaited only to be thrown away. */
  abandoned: boolean;
  done: () => void;
}

export class SerialLineDevice {
  readonly path: string;
  readonly #options: SerialLineDeviceOptions;
  #port: SerialPort | undefined;
  #connected = false;
  #handshaking = false;
  #closed = true;
  #lastError: string | undefined;
  #queue: Pending[] = [];
  #inFlight: InFlight | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelay: number;
  #firstAttempt: Promise<void> | undefined;

  constructor(options: SerialLineDeviceOptions) {
    this.path = options.path;
    this.#options = options;
    this.#reconnectDelay = options.reconnectDelayMs ?? 250;
  }

  /** Connected and past the handshake: commands are being taken. */
  get connected(): boolean {
    return this.#connected && !this.#handshaking;
  }

  /** Why it is not connected, or why it last lost the connection. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Start connecting. Resolves after the first attempt, connected or not: an absent
   * port is retried in the background (see `connected` and `onStatus`).
   */
  open(): Promise<void> {
    this.#closed = false;
    this.#firstAttempt ??= this.#connect();
    return this.#firstAttempt;
  }

  /** Close the port and stop reconnecting; pending commands fail. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#firstAttempt = undefined; // a later open() connects afresh
    clearTimeout(this.#reconnectTimer);
    this.#failAll(new UnavailableError(`serial port ${this.path} was closed`));
    const port = this.#port;
    this.#port = undefined;
    this.#connected = false;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /**
   * Send `command` and resolve with its reply line. Queued behind other commands; rejects
   * with UnavailableError (503, naming the port) while disconnected, SerialTimeoutError
   * when no reply comes in time, DeviceError for an error reply, or the signal's reason.
   */
  query(command: string, options: QueryOptions = {}): Promise<string> {
    return this.#enqueue(command, options, false);
  }

  /** Send a command whose reply does not matter (read and dropped). */
  async send(command: string, options: QueryOptions = {}): Promise<void> {
    await this.query(command, options);
  }

  #enqueue(command: string, options: QueryOptions, handshake: boolean): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (options.signal?.aborted) return reject(options.signal.reason);
      // Disconnected: fail fast. During a handshake, others' commands wait for it.
      if (!this.#connected) return reject(this.#unavailable());
      const pending: Pending = { command, options, resolve, reject, handshake };
      options.signal?.addEventListener(
        "abort",
        () => {
          const index = this.#queue.indexOf(pending);
          if (index >= 0) {
            this.#queue.splice(index, 1);
            reject(options.signal!.reason);
          } else if (this.#inFlight?.pending === pending) {
            this.#inFlight.abandoned = true;
            reject(options.signal!.reason);
          }
        },
        { once: true },
      );
      if (handshake) this.#queue.unshift(pending);
      else this.#queue.push(pending);
      this.#next();
    });
  }

  #unavailable(): UnavailableError {
    const why = this.#lastError ? `: ${this.#lastError}` : "";
    return new UnavailableError(`serial port ${this.path} is not connected${why}`);
  }

  #next(): void {
    if (this.#inFlight || !this.#port || !this.#connected) return;
    const index = this.#handshaking ? this.#queue.findIndex((p) => p.handshake) : 0;
    if (index < 0 || index >= this.#queue.length) return;
    const [pending] = this.#queue.splice(index, 1) as [Pending];
    const timeoutMs = pending.options.timeoutMs ?? this.#options.timeoutMs ?? 2000;
    const flight: InFlight = {
      pending,
      expect: pending.options.expect,
      abandoned: false,
      timer: setTimeout(() => {
        if (this.#inFlight !== flight) return;
        this.#options.logger?.warn(
          { port: this.path, command: pending.command },
          `no reply to '${pending.command}' on ${this.path} within ${timeoutMs} ms`,
        );
        flight.done();
        pending.reject(
          new SerialTimeoutError(
            `no reply to '${pending.command}' from ${this.path} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs),
      done: () => {
        clearTimeout(flight.timer);
        if (this.#inFlight === flight) this.#inFlight = undefined;
        queueMicrotask(() => this.#next());
      },
    };
    this.#inFlight = flight;
    this.#port.write(`${pending.command}${this.#options.lineEnding ?? "\n"}`, "latin1", (error) => {
      if (error && this.#inFlight === flight) {
        flight.done();
        pending.reject(new UnavailableError(`cannot write to ${this.path}: ${error.message}`));
      }
    });
  }

  #onLine(raw: string): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const flight = this.#inFlight;
    if (!flight) {
      if (line.trim())
        this.#options.logger?.debug({ port: this.path, line }, "unsolicited line dropped");
      return;
    }
    const { errorReply } = this.#options;
    if (errorReply?.test(line)) {
      flight.done();
      if (!flight.abandoned) flight.pending.reject(new DeviceError(flight.pending.command, line));
      return;
    }
    if (flight.expect && !flight.expect.test(line)) {
      this.#options.logger?.debug(
        { port: this.path, command: flight.pending.command, line },
        "line skipped: not the reply expected",
      );
      return;
    }
    flight.done();
    if (!flight.abandoned) flight.pending.resolve(line);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const port = new SerialPort({
      path: this.path,
      baudRate: this.#options.baudRate ?? 115200,
      autoOpen: false,
    });
    try {
      await new Promise<void>((resolve, reject) =>
        port.open((error) => (error ? reject(error) : resolve())),
      );
    } catch (error) {
      this.#lost(`cannot open ${this.path}: ${(error as Error).message}`);
      return;
    }
    if (this.#closed) {
      port.close();
      return;
    }
    // Bytes from before we opened belong to no command of ours.
    await new Promise<void>((resolve) => port.flush(() => resolve()));
    this.#port = port;
    const lines = port.pipe(new ReadlineParser({ delimiter: "\n", encoding: "latin1" }));
    lines.on("data", (line: string) => {
      if (this.#port === port) this.#onLine(line);
    });
    port.on("close", (error?: Error & { disconnected?: boolean }) => {
      if (this.#port !== port) return;
      this.#port = undefined;
      this.#lost(error?.disconnected ? `${this.path} disconnected` : `${this.path} closed`);
    });
    port.on("error", (error) =>
      this.#options.logger?.debug({ err: error, port: this.path }, "serial error"),
    );
    this.#connected = true;
    this.#handshaking = true;
    const channel: SerialChannel = {
      path: this.path,
      query: (command, options = {}) => this.#enqueue(command, options, true),
    };
    try {
      await this.#options.onConnect?.(channel);
    } catch (error) {
      this.#handshaking = false;
      if (this.#port === port) {
        this.#port = undefined;
        port.close();
        this.#lost(`handshake on ${this.path} failed: ${(error as Error).message}`);
      }
      return;
    }
    this.#handshaking = false;
    if (this.#port !== port) return;
    this.#reconnectDelay = this.#options.reconnectDelayMs ?? 250;
    if (this.#lastError)
      this.#options.logger?.info({ port: this.path }, `${this.path} is connected again`);
    this.#options.onStatus?.({ connected: true });
    this.#next();
  }

  /** The port is gone (or never came): fail what waits, report, retry later. */
  #lost(reason: string): void {
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#lastError = reason;
    const error = new UnavailableError(`serial port ${this.path} is not connected: ${reason}`);
    this.#failAll(error);
    if (this.#closed) return;
    const delay = this.#reconnectDelay;
    this.#reconnectDelay = Math.min(this.#options.maxReconnectDelayMs ?? 5000, delay * 2);
    if (wasConnected || delay === (this.#options.reconnectDelayMs ?? 250)) {
      this.#options.logger?.warn({ port: this.path, retryInMs: delay }, `${reason}; retrying`);
    }
    this.#options.onStatus?.({ connected: false, error: reason });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delay);
  }

  #failAll(error: Error): void {
    const flight = this.#inFlight;
    this.#inFlight = undefined;
    if (flight) {
      clearTimeout(flight.timer);
      if (!flight.abandoned) flight.pending.reject(error);
    }
    for (const pending of this.#queue.splice(0)) pending.reject(error);
  }
}
