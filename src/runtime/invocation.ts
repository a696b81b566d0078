import { setTimeout as delay } from "node:timers/promises";
import type { ActionContext } from "../model/action.js";
import type { ActionDeclaration } from "../model/declarations.js";
import type { LogFn, ThingLogger } from "../model/logger.js";
import { randomFlatUuid } from "./flat-uuid.js";

export type InvocationStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * One record of an invocation's log. `time`, `level` and `message` are ours; the rest are
 * the members of labthings-fastapi's `LogRecordModel` (its invocations.py), so pages and
 * scripts written for that server read them, and its `ThingClient` reports a failed
 * action with the last record's `exception_type` and `traceback`.
 */
export interface InvocationLogRecord {
  time: string;
  level: LogLevel;
  message: string;
  /** Python's level name: `DEBUG`, `INFO`, `WARNING`, `ERROR`. */
  levelname: string;
  /** Python's level number: 10, 20, 30, 40. */
  levelno: number;
  /** When it was logged (the same instant as `time`). */
  created: string;
  /** The file that logged it (or, for an error, where the error was thrown), without its folder. */
  filename: string;
  lineno: number;
  /** The class name of the error logged with it (`{ err }`), if any. */
  exception_type?: string;
  /** That error's stack. */
  traceback?: string;
}

/** Where a record came from, and the error logged with it. */
export interface LogRecordOrigin {
  filename: string;
  lineno: number;
  exception_type?: string;
  traceback?: string;
}

const PYTHON_LEVELS: Record<LogLevel, { levelname: string; levelno: number }> = {
  debug: { levelname: "DEBUG", levelno: 10 },
  info: { levelname: "INFO", levelno: 20 },
  warn: { levelname: "WARNING", levelno: 30 },
  error: { levelname: "ERROR", levelno: 40 },
};

export interface InvocationError {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export interface InvocationProgress {
  fraction?: number;
  message?: string;
}

/** A link of an invocation: `self` (its status) and, once it has one, `output`. */
export interface InvocationLink {
  rel: "self" | "output";
  href: string;
}

/**
 * The wire form: the HTTP Basic Profile's ActionStatus, plus `thing`, `progress` and
 * `log`, plus what labthings-fastapi's clients read (its `InvocationModel`): `links`
 * (its `ThingClient` polls the `self` link) and `timeCompleted` (the same as `timeEnded`).
 */
export interface ActionStatus {
  id: string;
  href: string;
  thing: string;
  action: string;
  status: InvocationStatus;
  timeRequested: string;
  timeStarted?: string;
  timeEnded?: string;
  timeCompleted?: string;
  input?: unknown;
  output?: unknown;
  error?: InvocationError;
  progress?: InvocationProgress;
  log: InvocationLogRecord[];
  links: InvocationLink[];
}

/** Most log records kept per invocation; older ones are dropped (and counted). */
export const MAX_LOG_RECORDS = 200;

export type InvocationListener = (invocation: Invocation) => void;

/** What a status shows of a log nobody wrote to: shared, so no array per invocation. */
const EMPTY_LOG: InvocationLogRecord[] = Object.freeze([]) as unknown as InvocationLogRecord[];

/**
 * One run of an action: its state, its cancellation signal and its bounded log.
 *
 * Kept small on purpose: a server keeps up to `maxRetainedInvocations` finished ones, and
 * every byte each holds is copied by V8's scavenger while they are young (the cost shows
 * as p99 latency under load). So the id is a flat string, times are numbers (start and
 * end as small offsets), and the AbortController, the `settled` promise, the log array
 * and the listener set exist only while something needs them (an action reading
 * `ctx.signal`, a cancel, someone awaiting the end, a log record).
 */
export class Invocation {
  readonly id = randomFlatUuid();
  readonly action: string;
  status: InvocationStatus = "pending";
  output: unknown;
  error: InvocationError | undefined;
  progress: InvocationProgress | undefined;
  logRecordsDropped = 0;
  /** Id of the notification that announced the end (set by the ObservationHub). */
  finalNotificationId: number | undefined;
  readonly #requestedAt = Date.now();
  /** Milliseconds after `#requestedAt`: small integers, which V8 stores without a box. */
  #startedAfter: number | undefined;
  #endedAfter: number | undefined;
  #controller: AbortController | undefined;
  #log: InvocationLogRecord[] | undefined;
  #settled: Promise<void> | undefined;
  #settle: (() => void) | undefined;
  #listeners: Set<InvocationListener> | undefined;
  #notify: InvocationListener | undefined;

  /**
   * @param notify told of every change, before the listeners added with `onChange` (the
   *   InvocationManager passes one function for all its invocations).
   */
  constructor(
    readonly thing: string,
    declaration: ActionDeclaration,
    readonly input: unknown,
    notify?: InvocationListener,
  ) {
    this.action = declaration.name;
    this.#notify = notify;
  }

  get timeRequested(): Date {
    return new Date(this.#requestedAt);
  }

  get timeStarted(): Date | undefined {
    return this.#at(this.#startedAfter);
  }

  get timeEnded(): Date | undefined {
    return this.#at(this.#endedAfter);
  }

  #at(offset: number | undefined): Date | undefined {
    return offset === undefined ? undefined : new Date(this.#requestedAt + offset);
  }

  /** Fires on cancel and at shutdown. Created on first use: most actions never look. */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** Whether the invocation was told to stop (without creating its signal). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  /** Fire the signal (once); an action that has not looked at it yet sees it aborted. */
  abort(reason: unknown): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }

  /** Resolves once the action has finished, whatever the outcome. */
  get settled(): Promise<void> {
    if (this.#settled === undefined) {
      this.#settled = this.finished
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.#settle = resolve;
          });
    }
    return this.#settled;
  }

  get finished(): boolean {
    return this.status === "completed" || this.status === "failed" || this.status === "cancelled";
  }

  /** The log records kept (at most MAX_LOG_RECORDS, oldest first). */
  get log(): InvocationLogRecord[] {
    return this.#log ?? EMPTY_LOG;
  }

  /** Tell observers about a change (status, progress, log). */
  changed(): void {
    this.#notify?.(this);
    if (this.#listeners) for (const listener of this.#listeners) listener(this);
  }

  onChange(listener: InvocationListener): () => void {
    this.#listeners ??= new Set();
    this.#listeners.add(listener);
    return () => this.#listeners?.delete(listener);
  }

  start(): void {
    this.status = "running";
    this.#startedAfter = Date.now() - this.#requestedAt;
    this.changed();
  }

  finish(
    status: "completed" | "failed" | "cancelled",
    fields: { output?: unknown; error?: InvocationError } = {},
  ): void {
    this.status = status;
    this.output = fields.output;
    this.error = fields.error;
    this.#endedAfter = Date.now() - this.#requestedAt;
    this.changed();
    this.#settle?.();
    // Whoever awaits it holds it; later callers get a fresh resolved one.
    this.#settle = undefined;
    this.#settled = undefined;
  }

  record(level: LogLevel, message: string, origin: LogRecordOrigin): void {
    this.#log ??= [];
    if (this.#log.length >= MAX_LOG_RECORDS) {
      this.#log.shift();
      this.logRecordsDropped += 1;
    }
    const time = isoTime(Date.now());
    this.#log.push({ time, level, message, ...PYTHON_LEVELS[level], created: time, ...origin });
    this.changed();
  }

  toStatus(href: string): ActionStatus {
    const status: ActionStatus = {
      id: this.id,
      href,
      thing: this.thing,
      action: this.action,
      status: this.status,
      timeRequested: isoTime(this.#requestedAt),
      log: this.log,
      links: [{ rel: "self", href }],
    };
    if (this.#startedAfter !== undefined) {
      status.timeStarted = isoTime(this.#requestedAt + this.#startedAfter);
    }
    if (this.#endedAfter !== undefined) {
      status.timeEnded = isoTime(this.#requestedAt + this.#endedAfter);
      status.timeCompleted = status.timeEnded;
    }
    if (this.input !== undefined) status.input = this.input;
    if (this.output !== undefined) {
      status.output = this.output;
      status.links.push({ rel: "output", href: `${href}/output` });
    } else if (this.status === "completed") {
      // labthings-fastapi's ThingClient reads `invocation["output"]` once completed: a
      // KeyError in Python when absent.
      status.output = null;
    }
    if (this.error) status.error = this.error;
    if (this.progress) status.progress = this.progress;
    return status;
  }
}

let cachedMs = Number.NaN;
let cachedIso = "";

/**
 * `new Date(ms).toISOString()`, remembering the last answer: under load, many
 * invocations are requested, started and ended within the same millisecond.
 */
function isoTime(ms: number): string {
  if (ms !== cachedMs) {
    cachedIso = new Date(ms).toISOString();
    cachedMs = ms;
  }
  return cachedIso;
}

/**
 * What an action sees while it runs. A class, so `signal` is a getter on the prototype:
 * the AbortController is made only when an action reads it (a getter in an object
 * literal costs the same as the signal itself, measured). `progress` and `sleep` are
 * bound on first use, so they still work when destructured (`const { sleep } = ctx`).
 */
export class InvocationContext implements ActionContext {
  readonly id: string;
  readonly #invocation: Invocation;
  readonly #serverLogger: ThingLogger;
  #logger: ThingLogger | undefined;
  #progress: ActionContext["progress"] | undefined;
  #sleep: ActionContext["sleep"] | undefined;

  constructor(invocation: Invocation, serverLogger: ThingLogger) {
    this.id = invocation.id;
    this.#invocation = invocation;
    this.#serverLogger = serverLogger;
  }

  get signal(): AbortSignal {
    return this.#invocation.signal;
  }

  get logger(): ThingLogger {
    this.#logger ??= invocationLogger(this.#invocation, this.#serverLogger);
    return this.#logger;
  }

  get progress(): ActionContext["progress"] {
    const invocation = this.#invocation;
    this.#progress ??= (fraction, message) => {
      invocation.progress = {
        // NaN or Infinity (a division by zero in the action) means "unknown", not null.
        ...(fraction === undefined || Number.isNaN(fraction)
          ? {}
          : { fraction: readableFraction(fraction) }),
        ...(message === undefined ? {} : { message }),
      };
      invocation.changed();
    };
    return this.#progress;
  }

  get sleep(): ActionContext["sleep"] {
    const signal = this.#invocation.signal;
    this.#sleep ??= (ms) =>
      delay(ms, undefined, { signal }).catch(() => Promise.reject(signal.reason));
    return this.#sleep;
  }
}

/**
 * The logger an action gets: every record goes to the server log (tagged with the
 * invocation) and is kept with the invocation for clients to read. Made when an action
 * first reads `ctx.logger` (InvocationContext): most actions never log.
 */
export function invocationLogger(invocation: Invocation, serverLogger: ThingLogger): ThingLogger {
  const tagged = serverLogger.child({ action: invocation.action, invocation: invocation.id });
  const level = (name: LogLevel): LogFn => {
    const log = ((fieldsOrMessage: object | string, message?: string) => {
      if (typeof fieldsOrMessage === "string") {
        tagged[name](fieldsOrMessage);
        invocation.record(name, fieldsOrMessage, callerOf(log));
      } else {
        tagged[name](fieldsOrMessage, message);
        const err = (fieldsOrMessage as { err?: unknown }).err;
        if (err instanceof Error) {
          // The invocation's log keeps the stack: it is how a lab user debugs their driver.
          const stack = err.stack ?? String(err);
          invocation.record(name, `${message ?? ""}: ${stack}`, {
            ...(frameOf(stack) ?? callerOf(log)),
            exception_type: err.name || err.constructor.name,
            traceback: stack,
          });
        } else {
          invocation.record(name, message ?? "", callerOf(log));
        }
      }
    }) as LogFn;
    return log;
  };
  const logger: ThingLogger = {
    error: level("error"),
    warn: level("warn"),
    info: level("info"),
    debug: level("debug"),
    child: () => logger,
  };
  return logger;
}

/** The file and line that called `fn`: one stack frame, captured only when an action logs. */
function callerOf(fn: Function): LogRecordOrigin {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  Error.captureStackTrace(holder, fn);
  Error.stackTraceLimit = limit;
  return frameOf(holder.stack ?? "") ?? { filename: "", lineno: 0 };
}

/** The first `at … (file:line:column)` frame of a V8 stack, as a file name and line. */
function frameOf(stack: string): LogRecordOrigin | undefined {
  for (const line of stack.split("\n")) {
    const match = /^\s*at (?:.*\()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (match) return { filename: match[1]!.split(/[\\/]/).pop()!, lineno: Number(match[2]) };
  }
  return undefined;
}

/**
 * A progress fraction as a person reads it: clamped to 0..1 and rounded to 0.1 %
 * (`0.27612944000000184` → `0.276`), so clients never show float noise.
 */
export function readableFraction(fraction: number): number {
  return Math.round(Math.max(0, Math.min(1, fraction)) * 1000) / 1000;
}
