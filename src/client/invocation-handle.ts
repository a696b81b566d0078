/**
 * One action invocation seen from the client: its id and status, `result()`, progress
 * updates, and cancellation. An asynchronous invocation (201 + Location) is watched
 * through its status URL: over server-sent events when the server offers them there
 * (labthings-ts does), otherwise by polling queryaction. Watching starts when something
 * needs it (`result()`, `progress()`, an `onProgress` callback) and ends with the
 * invocation. Browser-safe.
 */
import { abortableSleep } from "./abortable-sleep.js";
import {
  InvocationCancelledError,
  InvocationFailedError,
  type InvocationLogRecord,
  type InvocationStatusName,
  ProtocolError,
  type RemoteActionStatus,
} from "./client-errors.js";
import { isEventStreamType, isJsonType } from "./form-selection.js";
import { type HttpRequester, readJson } from "./http-requester.js";
import { type ReconnectOptions, readEventStream } from "./sse-reader.js";

/** A change of an invocation: where it is now, and the log records new since the last one. */
export interface InvocationUpdate {
  status: InvocationStatusName;
  /** Progress from 0 to 1, when the action reports it. */
  fraction?: number;
  message?: string;
  /** Log records added since the previous update (all known ones in the first). */
  log: InvocationLogRecord[];
  /** The whole status as the server sent it. */
  report: RemoteActionStatus;
}

/** How an invocation is watched: SSE when offered ("auto"), only SSE, or only polling. */
export type WatchMode = "auto" | "sse" | "poll";

/** What ThingClient knows when it creates a handle (not public API). */
export interface InvocationHandleInit {
  requester: HttpRequester;
  action: string;
  /** Absolute URL of the invocation's status (the 201's Location); none for synchronous ones. */
  href?: string;
  id?: string;
  /** The first status: the 201's body, or a synthesized `completed` for a synchronous answer. */
  report: RemoteActionStatus;
  /**
   * Whether the TD gives the action an output schema. Without one, a completed status's
   * `output: null` means "no output" (labthings-ts sends it so labthings-fastapi's client,
   * which reads `output` unconditionally, works) and `result()` resolves to undefined.
   */
  declaresOutput?: boolean;
  queryMethod?: string;
  cancelMethod?: string;
  cancelUrl?: string;
  signal?: AbortSignal | undefined;
  onProgress?: ((update: InvocationUpdate) => void) | undefined;
  watch?: WatchMode | undefined;
  /** Longest pause between two polls; default 1000 ms (polls start at 25 ms and back off). */
  pollIntervalMs?: number | undefined;
  reconnect?: ReconnectOptions | undefined;
}

const FINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);
const STATUSES: ReadonlySet<string> = new Set([...FINAL, "pending", "running"]);
const FIRST_POLL_MS = 25;

/**
 * An action invocation. `Output` is the action's output type (generated clients fill it in).
 *
 * @example
 * ```ts
 * const move = await stage.invokeAction<Position>("moveRelative", { x: 500 }, {
 *   onProgress: ({ fraction }) => console.log(`${Math.round((fraction ?? 0) * 100)} %`),
 * });
 * console.log(move.id, move.status); // "…", "pending"
 * const position = await move.result(); // throws InvocationFailedError on failure
 * ```
 */
export class InvocationHandle<Output = unknown> {
  /** The action's name in the Thing Description. */
  readonly action: string;
  /** Absolute URL of the status resource; undefined for a synchronous action. */
  readonly href: string | undefined;
  /** The invocation id; undefined for a synchronous action. */
  readonly id: string | undefined;
  readonly #init: InvocationHandleInit;
  #report: RemoteActionStatus;
  #reportText = "";
  #lastLogRecord: InvocationLogRecord | undefined;
  readonly #listeners = new Set<(update: InvocationUpdate) => void>();
  readonly #settled: Promise<RemoteActionStatus>;
  #resolveSettled!: (report: RemoteActionStatus) => void;
  #rejectSettled!: (error: unknown) => void;
  #watchError: unknown;
  #watching = false;
  readonly #stopWatching = new AbortController();
  #abortReason: unknown;
  #aborted = false;

  constructor(init: InvocationHandleInit) {
    this.#init = init;
    this.action = init.action;
    this.href = init.href;
    this.id = init.id ?? init.report.id;
    this.#report = init.report;
    this.#settled = new Promise((resolve, reject) => {
      this.#resolveSettled = resolve;
      this.#rejectSettled = reject;
    });
    // Nobody may ever ask for the result: a failure to watch must not be "unhandled".
    this.#settled.catch(() => {});
    this.#apply(init.report);
    if (init.onProgress) {
      this.#listeners.add(init.onProgress);
      this.#ensureWatching();
    }
    const signal = init.signal;
    if (signal && !this.finished) {
      const onAbort = () => {
        this.#aborted = true;
        this.#abortReason = signal.reason;
        this.cancel().catch((error: unknown) => this.#fail(error));
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        void this.#settled.then(
          () => signal.removeEventListener("abort", onAbort),
          () => signal.removeEventListener("abort", onAbort),
        );
      }
    }
  }

  /** The status as last seen (call `refresh()` to ask the server now). */
  get status(): InvocationStatusName {
    return this.#report.status;
  }

  /** The whole status report as last seen. */
  get report(): RemoteActionStatus {
    return this.#report;
  }

  /** Whether the invocation has ended (completed, failed or cancelled). */
  get finished(): boolean {
    return FINAL.has(this.#report.status);
  }

  /**
   * The output, once the invocation has completed. Rejects with `InvocationFailedError`
   * (its `problem` is the server's error) when it failed, `InvocationCancelledError` when
   * it was cancelled, and the abort reason when this invocation's own `signal` cancelled it.
   */
  async result(): Promise<Output> {
    this.#ensureWatching();
    const report = await this.#settled;
    if (report.status === "completed") {
      const none = report.output === null && this.#init.declaresOutput === false;
      return (none ? undefined : report.output) as Output;
    }
    const what = `action '${this.action}'${this.id ? ` (invocation ${this.id})` : ""}`;
    if (report.status === "cancelled") {
      if (this.#aborted) throw this.#abortReason;
      throw new InvocationCancelledError(report, `${what} was cancelled`, { url: this.href });
    }
    const reason = report.error?.detail ?? report.error?.title ?? "no error reported";
    throw new InvocationFailedError(report, `${what} failed: ${reason}`, {
      url: this.href,
      status: report.error?.status,
    });
  }

  /**
   * Every update until the invocation ends: first where it is now, then each change.
   *
   * @example
   * ```ts
   * for await (const { status, fraction, log } of handle.progress()) {
   *   console.log(status, fraction, log.map((record) => record.message));
   * }
   * ```
   */
  async *progress(): AsyncGenerator<InvocationUpdate, void, undefined> {
    this.#ensureWatching();
    const queue: InvocationUpdate[] = [];
    let wake: (() => void) | undefined;
    const listener = (update: InvocationUpdate) => {
      queue.push(update);
      wake?.();
    };
    this.#listeners.add(listener);
    try {
      yield this.#update(this.#report, this.#report.log ?? []);
      if (this.finished) return;
      for (;;) {
        for (let update = queue.shift(); update; update = queue.shift()) {
          yield update;
          if (FINAL.has(update.status)) return;
        }
        await Promise.race([
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
          this.#settled.then(
            () => {},
            () => {},
          ),
        ]);
        wake = undefined;
        if (queue.length === 0) {
          if (this.#watchError !== undefined) throw this.#watchError;
          if (this.finished) return;
        }
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /**
   * Cancel on the server (the TD's cancelaction, i.e. DELETE on the invocation's URL).
   * Resolves once the server has answered; the status is then `cancelled` unless the
   * invocation had already ended (which is not an error).
   */
  async cancel(options: { signal?: AbortSignal } = {}): Promise<void> {
    const url = this.#init.cancelUrl ?? this.href;
    if (url === undefined || this.finished) return;
    const response = await this.#init.requester.send(
      url,
      { method: this.#init.cancelMethod ?? "DELETE", signal: options.signal },
      (status) => status === 409, // already finished
    );
    await response.body?.cancel().catch(() => {});
    if (!this.finished) await this.refresh(options);
  }

  /** Ask the server for the status now (queryaction) and return it. */
  async refresh(options: { signal?: AbortSignal } = {}): Promise<RemoteActionStatus> {
    if (this.href === undefined) return this.#report;
    const report = await this.#init.requester.json<unknown>(this.href, {
      method: this.#init.queryMethod ?? "GET",
      signal: options.signal,
    });
    this.#apply(this.#checked(report));
    return this.#report;
  }

  #ensureWatching(): void {
    if (this.#watching || this.finished || this.href === undefined) return;
    this.#watching = true;
    this.#watch().catch((error: unknown) => this.#fail(error));
  }

  async #watch(): Promise<void> {
    const mode = this.#init.watch ?? "auto";
    if (mode !== "poll" && (await this.#watchEvents())) return;
    if (this.finished || this.#stopWatching.signal.aborted) return;
    await this.#poll();
  }

  /** Follow the status URL's event stream; false when the server does not offer one. */
  async #watchEvents(): Promise<boolean> {
    const href = this.href!;
    const signal = this.#stopWatching.signal;
    const method = this.#init.queryMethod ?? "GET";
    const response = await this.#init.requester.send(
      href,
      { method, accept: "text/event-stream, application/json;q=0.5", signal },
      (status) => status === 406,
    );
    if (!isEventStreamType(response.headers.get("content-type"))) {
      if (response.ok && isJsonType(response.headers.get("content-type"))) {
        this.#apply(this.#checked(await readJson(response, method, href)));
      } else {
        await response.body?.cancel().catch(() => {});
      }
      if (this.#init.watch === "sse") {
        throw new ProtocolError(`${href} does not offer the invocation's status as events`, {
          url: href,
        });
      }
      return false;
    }
    for await (const message of readEventStream(this.#init.requester, href, {
      method,
      signal,
      firstResponse: response,
      reconnect: this.#init.reconnect,
    })) {
      let data: unknown;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        throw new ProtocolError(`${href} sent an event whose data is not JSON`, {
          url: href,
          cause: error,
        });
      }
      this.#apply(this.#checked(data));
      if (this.finished) return true;
    }
    // The stream ended (a reconnect got 204) before a final status: ask once more.
    return this.finished;
  }

  async #poll(): Promise<void> {
    const signal = this.#stopWatching.signal;
    let interval = FIRST_POLL_MS;
    const longest = this.#init.pollIntervalMs ?? 1000;
    while (!this.finished) {
      if (!(await abortableSleep(interval, signal))) return;
      interval = Math.min(longest, interval * 2);
      await this.refresh({ signal });
    }
  }

  #checked(report: unknown): RemoteActionStatus {
    if (
      typeof report !== "object" ||
      report === null ||
      typeof (report as RemoteActionStatus).status !== "string" ||
      !STATUSES.has((report as RemoteActionStatus).status)
    ) {
      throw new ProtocolError(
        `the status of action '${this.action}' is not an ActionStatus: ${JSON.stringify(report)}`,
        { url: this.href },
      );
    }
    return report as RemoteActionStatus;
  }

  /** Take a new status report: remember it, tell listeners, settle when final. */
  #apply(report: RemoteActionStatus): void {
    const text = JSON.stringify(report);
    if (text === this.#reportText) return;
    this.#reportText = text;
    this.#report = report;
    const log = report.log ?? [];
    const update = this.#update(report, this.#newLogRecords(log));
    this.#lastLogRecord = log.at(-1) ?? this.#lastLogRecord;
    for (const listener of [...this.#listeners]) listener(update);
    if (this.finished) {
      this.#stopWatching.abort();
      this.#resolveSettled(report);
    }
  }

  #update(report: RemoteActionStatus, log: InvocationLogRecord[]): InvocationUpdate {
    const update: InvocationUpdate = { status: report.status, log, report };
    if (report.progress?.fraction !== undefined) update.fraction = report.progress.fraction;
    if (report.progress?.message !== undefined) update.message = report.progress.message;
    return update;
  }

  /** Records after the last one already delivered (the server drops the oldest past a bound). */
  #newLogRecords(log: InvocationLogRecord[]): InvocationLogRecord[] {
    const last = this.#lastLogRecord;
    if (last === undefined) return log;
    const key = JSON.stringify(last);
    for (let i = log.length - 1; i >= 0; i--) {
      if (JSON.stringify(log[i]) === key) return log.slice(i + 1);
    }
    return log;
  }

  #fail(error: unknown): void {
    if (this.finished) return;
    this.#watchError = error;
    this.#stopWatching.abort();
    this.#rejectSettled(error); // wakes progress() iterators too
  }
}
