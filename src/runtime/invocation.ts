import { randomUUID } from "node:crypto";
import type { ActionDeclaration } from "../model/action.js";
import type { LogFn, ThingLogger } from "../model/logger.js";

export type InvocationStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

export interface InvocationLogRecord {
  time: string;
  level: "debug" | "info" | "warn" | "error";
  message: string;
}

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

/** The wire form (HTTP Basic Profile ActionStatus, plus `thing`, `progress` and `log`). */
export interface ActionStatus {
  id: string;
  href: string;
  thing: string;
  action: string;
  status: InvocationStatus;
  timeRequested: string;
  timeStarted?: string;
  timeEnded?: string;
  input?: unknown;
  output?: unknown;
  error?: InvocationError;
  progress?: InvocationProgress;
  log: InvocationLogRecord[];
}

/** Most log records kept per invocation; older ones are dropped (and counted). */
export const MAX_LOG_RECORDS = 200;

export type InvocationListener = (invocation: Invocation) => void;

/** One run of an action: its state, its cancellation signal and its bounded log. */
export class Invocation {
  readonly id = randomUUID();
  readonly controller = new AbortController();
  readonly timeRequested = new Date();
  status: InvocationStatus = "pending";
  timeStarted: Date | undefined;
  timeEnded: Date | undefined;
  output: unknown;
  error: InvocationError | undefined;
  progress: InvocationProgress | undefined;
  readonly log: InvocationLogRecord[] = [];
  logRecordsDropped = 0;
  /** Id of the notification that announced the end (set by the ObservationHub). */
  finalNotificationId: number | undefined;
  /** Resolves once the action has finished, whatever the outcome. */
  readonly settled: Promise<void>;
  #settle!: () => void;
  readonly #listeners = new Set<InvocationListener>();

  constructor(
    readonly thing: string,
    readonly declaration: ActionDeclaration,
    readonly input: unknown,
  ) {
    this.settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  get action(): string {
    return this.declaration.name;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get finished(): boolean {
    return this.status === "completed" || this.status === "failed" || this.status === "cancelled";
  }

  /** Tell observers about a change (status, progress, log). */
  changed(): void {
    for (const listener of this.#listeners) listener(this);
  }

  onChange(listener: InvocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start(): void {
    this.status = "running";
    this.timeStarted = new Date();
    this.changed();
  }

  finish(
    status: "completed" | "failed" | "cancelled",
    fields: { output?: unknown; error?: InvocationError } = {},
  ): void {
    this.status = status;
    this.output = fields.output;
    this.error = fields.error;
    this.timeEnded = new Date();
    this.changed();
    this.#settle();
  }

  record(level: InvocationLogRecord["level"], message: string): void {
    if (this.log.length >= MAX_LOG_RECORDS) {
      this.log.shift();
      this.logRecordsDropped += 1;
    }
    this.log.push({ time: new Date().toISOString(), level, message });
    this.changed();
  }

  toStatus(href: string): ActionStatus {
    const status: ActionStatus = {
      id: this.id,
      href,
      thing: this.thing,
      action: this.action,
      status: this.status,
      timeRequested: this.timeRequested.toISOString(),
      log: this.log,
    };
    if (this.timeStarted) status.timeStarted = this.timeStarted.toISOString();
    if (this.timeEnded) status.timeEnded = this.timeEnded.toISOString();
    if (this.input !== undefined) status.input = this.input;
    if (this.output !== undefined) status.output = this.output;
    if (this.error) status.error = this.error;
    if (this.progress) status.progress = this.progress;
    return status;
  }
}

/**
 * The logger an action gets: every record goes to the server log (tagged with the
 * invocation) and is kept with the invocation for clients to read.
 */
export function invocationLogger(invocation: Invocation, serverLogger: ThingLogger): ThingLogger {
  const tagged = serverLogger.child({ action: invocation.action, invocation: invocation.id });
  const level = (name: InvocationLogRecord["level"]): LogFn =>
    ((fieldsOrMessage: object | string, message?: string) => {
      if (typeof fieldsOrMessage === "string") {
        tagged[name](fieldsOrMessage);
        invocation.record(name, fieldsOrMessage);
      } else {
        tagged[name](fieldsOrMessage, message);
        const err = (fieldsOrMessage as { err?: unknown }).err;
        // The invocation's log keeps the stack: it is how a lab user debugs their driver.
        const detail = err instanceof Error ? `: ${err.stack ?? err.message}` : "";
        invocation.record(name, `${message ?? ""}${detail}`);
      }
    }) as LogFn;
  const logger: ThingLogger = {
    error: level("error"),
    warn: level("warn"),
    info: level("info"),
    debug: level("debug"),
    child: () => logger,
  };
  return logger;
}
