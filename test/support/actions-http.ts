/**
 * Helpers for the action tests: invoking an action, polling an invocation's status URL,
 * bounded polls of any condition, and a gate an action can wait on. JSON requests are in
 * json-http.ts, Problem Details checks in problem.ts, raw HTTP requests in raw-http.ts.
 */
import { expect } from "vitest";
import type { ActionStatus } from "../../src/index.js";
import { getJson, postJson } from "./json-http.js";
import { deferred } from "./within.js";

/** Upper bound for any single wait on the network or on the server. */
export const WAIT_MS = 10_000;

/** Pause between two polls of a status URL (a poll interval, not a wait for an outcome). */
const POLL_INTERVAL_MS = 10;

/**
 * A gate an action waits on until the test opens it: makes "while it runs" a state the
 * test controls instead of a race against a timer. Waiting ends early (rejecting with
 * the abort reason) when the action's signal fires, unless `ignoreSignal` is set.
 */
export class Gate {
  readonly #open = deferred();
  #isOpen = false;

  get isOpen(): boolean {
    return this.#isOpen;
  }

  open(): void {
    this.#isOpen = true;
    this.#open.resolve();
  }

  wait(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#open.promise;
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      void this.#open.promise.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }
}

/** POST an asynchronous action: expects 201 with a Location that is the status's href. */
export async function invoke(base: string, path: string, body?: unknown): Promise<ActionStatus> {
  const response = await postJson(`${base}/${path}`, body);
  const text = await response.text();
  expect(response.status, `POST ${path}: ${text}`).toBe(201);
  const status = JSON.parse(text) as ActionStatus;
  expect(response.headers.get("location")).toBe(`/action_invocations/${status.id}`);
  expect(status.href).toBe(response.headers.get("location"));
  return status;
}

/** GET an invocation's status (by id), expecting 200. */
export function statusOf(base: string, id: string): Promise<ActionStatus> {
  return getJson<ActionStatus>(`${base}/action_invocations/${id}`);
}

/**
 * Poll an invocation's status URL until `predicate` holds; bounded. Fails early, with the
 * status, when the invocation finished without the predicate ever holding.
 */
export async function pollStatus(
  base: string,
  id: string,
  predicate: (status: ActionStatus) => boolean,
  what: string,
  ms = WAIT_MS,
): Promise<ActionStatus> {
  const deadline = performance.now() + ms;
  let last: ActionStatus | undefined;
  for (;;) {
    last = await statusOf(base, id);
    if (predicate(last)) return last;
    if (FINISHED.has(last.status)) {
      throw new Error(`invocation finished before ${what}: ${JSON.stringify(last)}`);
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify(last)}`);
    }
    await pause(POLL_INTERVAL_MS);
  }
}

/** Poll until the invocation has finished (completed, failed or cancelled). */
export function pollFinished(base: string, id: string, ms = WAIT_MS): Promise<ActionStatus> {
  return pollStatus(base, id, (s) => FINISHED.has(s.status), "the invocation to finish", ms);
}

/** Poll any condition until it holds; bounded. */
export async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  ms = WAIT_MS,
): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await pause(POLL_INTERVAL_MS);
  }
}

export const FINISHED: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** RFC 3339 date-time as `Date.toISOString()` writes it (UTC). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
