/**
 * Runs action invocations: validates input before an invocation exists, runs actions
 * concurrently with an AbortSignal each, takes declared locks, validates outputs, keeps
 * finished invocations for a retention time (and at most a number of them), and aborts
 * everything at shutdown.
 */
import { performance } from "node:perf_hooks";
import {
  ConflictError,
  InvalidInputError,
  LabThingsError,
  LockBusyError,
  NotFoundError,
  QueueFullError,
  UnavailableError,
} from "../errors.js";
import { BlobOutput } from "../model/action.js";
import type { ActionDeclaration } from "../model/declarations.js";
import type { ThingLogger } from "../model/logger.js";
import type { SchemaValidator } from "../model/schema-validator.js";
import { describeFieldErrors } from "../model/schema-validator.js";
import { unavailableReason } from "../model/thing.js";
import { INVOCATION_CANCELLED_TYPE, problemType } from "../problem-types.js";
import type { BlobReference, BlobStore, StoredBlob } from "./blob-store.js";
import type { ExposedThing } from "./exposed-thing.js";
import { Invocation, InvocationContext, type InvocationError } from "./invocation.js";
import type { LockManager } from "./lock-manager.js";
import { settleWithin } from "./settle.js";

export interface InvocationManagerOptions {
  validator: SchemaValidator;
  locks: LockManager;
  blobs: BlobStore;
  logger: ThingLogger;
  /** URL of a blob, for ActionStatus outputs. */
  blobHref: (id: string) => string;
  /** How long finished invocations (and their blobs) are kept. Default 5 minutes. */
  retentionMs?: number;
  /** Most finished invocations kept; the oldest go first. Default 1000. */
  maxRetained?: number;
  /** After a cancel, how long before an action still running is reported as ignoring it. Default 5 s. */
  ignoredAbortGraceMs?: number;
  /**
   * Most invocations accepted and not yet finished (waiting for a lock, or running); past
   * it `invoke` throws QueueFullError (503 with Retry-After). Default 1000; 0: no cap.
   */
  maxPending?: number;
}

/** Default cap on invocations not yet finished (`limits.pendingInvocations`). */
export const DEFAULT_MAX_PENDING_INVOCATIONS = 1000;

/** What a refused invocation's Retry-After says: long enough for a queued move or two. */
const QUEUE_FULL_RETRY_AFTER_S = 1;

/** An error thrown when an action returns a value its output schema does not allow. */
export class OutputValidationError extends LabThingsError {}

export class InvocationManager {
  readonly #invocations = new Map<string, Invocation>();
  /**
   * Finished invocations and when each expires (monotonic ms), oldest first: a Map keeps
   * insertion order and deletes in O(1), and with one retention time for all, the order
   * of ending is the order of expiry.
   */
  readonly #finished = new Map<Invocation, number>();
  /** Invocations whose output is a blob, and its id: only these have blobs to remove when forgotten. */
  readonly #withBlobs = new Map<Invocation, string>();
  /** Invocations accepted and not yet finished, counted against `maxPending`. */
  #unfinished = 0;
  /** One timer for all finished invocations, due when the oldest expires. */
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #options: Required<InvocationManagerOptions>;
  readonly #listeners = new Set<(invocation: Invocation) => void>();
  /** Passed to every invocation created while someone listens: one function, not one each. */
  readonly #notify = (invocation: Invocation): void => {
    for (const listener of this.#listeners) listener(invocation);
  };

  constructor(options: InvocationManagerOptions) {
    this.#options = {
      ...options,
      retentionMs: options.retentionMs ?? 5 * 60_000,
      maxRetained: options.maxRetained ?? 1000,
      ignoredAbortGraceMs: options.ignoredAbortGraceMs ?? 5000,
      maxPending: options.maxPending ?? DEFAULT_MAX_PENDING_INVOCATIONS,
    };
  }

  /**
   * Start an invocation. Input is validated first: a bad input throws InvalidInputError
   * and no invocation exists. A lock declared fail-fast that is held throws LockBusyError.
   * No input (`undefined`: no body) to an action whose input is an object with no required
   * member means `{}`; an action without input also takes `{}` (clients that always send
   * a JSON object, like labthings-fastapi's `ThingClient`, invoke it that way).
   * With `maxPending` invocations unfinished already it throws QueueFullError: a flood of
   * requests is refused instead of queued without bound.
   */
  invoke(exposed: ExposedThing, actionName: string, input: unknown): Invocation {
    const declaration = exposed.action(actionName);
    if (declaration.input) {
      if (input === undefined && optionalObject(declaration.input)) input = {};
      // Paths are relative to the input (`/x`), the value the caller sent.
      const errors = this.#options.validator.check(declaration.input, input, "");
      if (errors.length > 0) {
        throw new InvalidInputError(
          `invalid input for action '${exposed.name}/${actionName}': ${describeFieldErrors(errors)}`,
          errors,
        );
      }
    } else if (input !== undefined && input !== null && !isEmptyObject(input)) {
      throw new InvalidInputError(`action '${exposed.name}/${actionName}' takes no input`, [
        { field: "/", rule: "noInput", message: "must be empty" },
      ]);
    }
    const unavailable = unavailableReason(exposed.thing);
    if (unavailable !== undefined) {
      throw new UnavailableError(`'${exposed.name}/${actionName}' cannot run now: ${unavailable}`);
    }
    const lock = declaration.lock;
    if (lock?.waitMs === 0 && this.#options.locks.holder(lock.name)) {
      throw new LockBusyError(
        `'${exposed.name}/${actionName}' needs lock '${lock.name}', held by ${this.#options.locks.holder(lock.name)}`,
      );
    }
    const { maxPending } = this.#options;
    if (maxPending > 0 && this.#unfinished >= maxPending) {
      throw new QueueFullError(
        `${this.#unfinished} action invocations are waiting or running, the most this server takes (limits.pendingInvocations); try again when some have finished`,
        QUEUE_FULL_RETRY_AFTER_S,
      );
    }
    const listening = this.#listeners.size > 0;
    const invocation = new Invocation(
      exposed.name,
      declaration,
      declaration.input ? input : undefined,
      listening ? this.#notify : undefined,
    );
    this.#invocations.set(invocation.id, invocation);
    this.#unfinished += 1;
    if (listening) this.#notify(invocation);
    void this.#run(invocation, exposed, declaration);
    return invocation;
  }

  /**
   * Be told of every new invocation and every change of one (status, progress, log).
   * Listeners added later see only invocations created after.
   */
  onInvocationChange(listener: (invocation: Invocation) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(id: string): Invocation {
    const invocation = this.#invocations.get(id);
    if (!invocation) throw new NotFoundError(`no action invocation '${id}' (it may have expired)`);
    return invocation;
  }

  /** Invocations, newest first, optionally of one Thing and action. */
  list(filter: { thing?: string; action?: string } = {}): Invocation[] {
    const matching = [...this.#invocations.values()].filter(
      (i) =>
        (!filter.thing || i.thing === filter.thing) &&
        (!filter.action || i.action === filter.action),
    );
    return matching.reverse();
  }

  get size(): number {
    return this.#invocations.size;
  }

  /** Invocations accepted and not yet finished (waiting for a lock, or running). */
  get unfinished(): number {
    return this.#unfinished;
  }

  /** The blob an invocation's output refers to, while it is kept. */
  outputBlob(invocation: Invocation): StoredBlob | undefined {
    const id = this.#withBlobs.get(invocation);
    return id === undefined ? undefined : this.#options.blobs.get(id);
  }

  /**
   * Cancel: fire the invocation's signal and wait (at most `waitMs`) for it to settle.
   * Unknown id: NotFoundError; already finished: ConflictError.
   */
  async cancel(id: string, waitMs = 5000): Promise<Invocation> {
    const invocation = this.get(id);
    if (invocation.finished) {
      throw new ConflictError(`invocation '${id}' has already finished (${invocation.status})`);
    }
    this.#abort(invocation, "cancelled on request");
    await settleWithin(invocation.settled, waitMs);
    return invocation;
  }

  /**
   * Shutdown: abort every invocation still running and wait for them, at most `graceMs`.
   * Returns descriptions of those that ignored their signal (they are abandoned).
   */
  async abortAll(graceMs: number): Promise<string[]> {
    const running = [...this.#invocations.values()].filter((i) => !i.finished);
    for (const invocation of running) this.#abort(invocation, "server shutting down");
    await settleWithin(Promise.all(running.map((i) => i.settled)), graceMs);
    return running.filter((i) => !i.finished).map((i) => `${i.thing}/${i.action} (${i.id})`);
  }

  /** Drop the retention timer (server closed). */
  dispose(): void {
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  #abort(invocation: Invocation, reason: string): void {
    if (invocation.aborted) return;
    invocation.abort(new CancelledError(reason));
    const { ignoredAbortGraceMs } = this.#options;
    const timer = setTimeout(() => {
      if (!invocation.finished) {
        this.#options.logger.warn(
          { thing: invocation.thing, action: invocation.action, invocation: invocation.id },
          `action '${invocation.thing}/${invocation.action}' ignores its abort signal (${ignoredAbortGraceMs} ms after cancellation)`,
        );
      }
    }, ignoredAbortGraceMs);
    timer.unref();
    void invocation.settled.then(() => clearTimeout(timer));
  }

  async #run(
    invocation: Invocation,
    exposed: ExposedThing,
    declaration: ActionDeclaration,
  ): Promise<void> {
    const context = new InvocationContext(invocation, exposed.thing.logger);
    let release: (() => void) | undefined;
    try {
      const lock = declaration.lock;
      if (lock) {
        const locks = this.#options.locks;
        // Only a wait can be cancelled: a free lock is granted at once, without the signal.
        const mustWait = locks.holder(lock.name) !== undefined;
        release = await locks.acquire(lock.name, `${exposed.name}/${declaration.name}`, {
          waitMs: lock.waitMs,
          signal: mustWait ? invocation.signal : undefined,
        });
        if (invocation.aborted) throw invocation.signal.reason;
      }
      invocation.start();
      const method = (exposed.thing as unknown as Record<string, Function>)[declaration.member]!;
      const result: unknown = await method.call(exposed.thing, invocation.input, context);
      const output =
        result instanceof BlobOutput
          ? await this.#blobReference(invocation, result)
          : this.#checkedOutput(declaration, result);
      // An action that ignored cancellation but then returned still counts as cancelled.
      if (invocation.aborted) invocation.finish("cancelled", { error: cancelled(invocation) });
      else invocation.finish("completed", { output });
    } catch (error) {
      if (invocation.aborted) {
        invocation.finish("cancelled", { error: cancelled(invocation) });
      } else {
        context.logger.error({ err: error }, "action failed");
        invocation.finish("failed", { error: toInvocationError(error) });
      }
    } finally {
      release?.();
      this.#unfinished -= 1;
      if (invocation.finished) this.#retain(invocation);
    }
  }

  async #blobReference(invocation: Invocation, result: BlobOutput): Promise<BlobReference> {
    // Marked before the await: an invocation forgotten meanwhile still has its blob removed.
    this.#withBlobs.set(invocation, "");
    const blob = await this.#options.blobs.add(result, invocation.id);
    if (this.#withBlobs.has(invocation)) this.#withBlobs.set(invocation, blob.id);
    return {
      href: this.#options.blobHref(blob.id),
      mediaType: blob.mediaType,
      // labthings-fastapi's ThingClient makes a Blob only of an output with `media_type`.
      media_type: blob.mediaType,
      size: blob.size,
    };
  }

  /** The action's return value if its output schema allows it (synchronous: no extra await). */
  #checkedOutput(declaration: ActionDeclaration, result: unknown): unknown {
    if (!declaration.output) return undefined;
    const errors = this.#options.validator.check(declaration.output, result, declaration.name);
    if (errors.length > 0) {
      throw new OutputValidationError(
        `the action returned an output its schema does not allow: ${describeFieldErrors(errors)}`,
      );
    }
    return result;
  }

  /** Keep a finished invocation for the retention time, and at most `maxRetained` of them. */
  #retain(invocation: Invocation): void {
    const { retentionMs, maxRetained } = this.#options;
    // Whole ms: a small integer, stored unboxed (timers have ms resolution anyway).
    this.#finished.set(invocation, Math.ceil(performance.now() + retentionMs));
    while (this.#finished.size > maxRetained) {
      this.#forget(this.#finished.keys().next().value!);
    }
    if (this.#sweepTimer === undefined) this.#scheduleSweep(retentionMs);
  }

  #scheduleSweep(delayMs: number): void {
    // At least 1 ms: a timer can fire a little early, and the sweep then waits the rest.
    // At most what a timer takes: Node runs a longer one after 1 ms instead, so a retention
    // of a month (`actionRetentionMs: 2592000000`) became a sweep every millisecond.
    this.#sweepTimer = setTimeout(
      this.#sweep,
      Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(delayMs))),
    );
    this.#sweepTimer.unref();
  }

  /** Forget every expired invocation, then wait for the next one to expire. */
  readonly #sweep = (): void => {
    this.#sweepTimer = undefined;
    const now = performance.now();
    for (const [invocation, expiresAt] of this.#finished) {
      if (expiresAt > now) {
        this.#scheduleSweep(expiresAt - now);
        return;
      }
      this.#forget(invocation);
    }
  };

  #forget(invocation: Invocation): void {
    this.#invocations.delete(invocation.id);
    this.#finished.delete(invocation);
    if (this.#withBlobs.delete(invocation)) void this.#options.blobs.removeOwner(invocation.id);
  }
}

/** The longest delay `setTimeout` honours (2³¹ − 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The reason given to an invocation's AbortSignal. */
export class CancelledError extends Error {
  override name = "CancelledError";
}

/**
 * A cancelled invocation's `error`: labthings-fastapi's `InvocationCancelledError` type,
 * which its `ThingClient` raises as that exception; the detail is why (DELETE, shutdown).
 */
function cancelled(invocation: Invocation): InvocationError {
  const reason: unknown = invocation.signal.reason;
  return {
    type: INVOCATION_CANCELLED_TYPE,
    title: "Cancelled",
    status: 409,
    detail: reason instanceof Error ? reason.message : "cancelled",
  };
}

/** A JSON Schema for an object none of whose members is required (e.g. `Type.Partial`). */
function optionalObject(declared: object): boolean {
  const schema = declared as { type?: unknown; required?: unknown };
  return (
    schema.type === "object" && (!Array.isArray(schema.required) || schema.required.length === 0)
  );
}

function isEmptyObject(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 0
  );
}

function toInvocationError(error: unknown): InvocationError {
  if (error instanceof LabThingsError) {
    return {
      type: error.problemTypeUri,
      title: error.name,
      status: error.status,
      detail: error.message,
    };
  }
  if (error instanceof Error) {
    return {
      type: problemType("action-failed"),
      title: error.name || error.constructor.name,
      status: 500,
      detail: error.message,
    };
  }
  return {
    type: "tag:labthings-ts,2026:action-failed",
    title: "Error",
    status: 500,
    detail:
      error === undefined || error === null || error === ""
        ? `the action failed without saying why (it threw ${JSON.stringify(error) ?? "undefined"})`
        : describeThrown(error),
  };
}

/** A thrown non-Error, readable: JSON when it can be (objects), else its string form. */
function describeThrown(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {}
  }
  return String(value);
}
