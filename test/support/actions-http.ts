/**
 * Helpers for the action tests: bounded waits, JSON requests, polling an invocation's
 * status URL, Problem Details checks, raw HTTP requests (paths sent byte for byte, which
 * `fetch` would normalise) and a gate an action can wait on.
 */
import { request } from "node:http";
import { expect } from "vitest";
import { within } from "./within.js";

export { within };

import type { ActionStatus } from "../../src/index.js";

/** Upper bound for any single wait on the network or on the server. */
export const WAIT_MS = 10_000;

/** Pause between two polls of a status URL (a poll interval, not a wait for an outcome). */
const POLL_INTERVAL_MS = 10;

/** A promise with its resolve function (Promise.withResolvers needs Node 22). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

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

export function postJson(url: string, body?: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
}

export function putJson(url: string, value: unknown): Promise<Response> {
  return fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
}

export async function getJson<T = unknown>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  expect(response.status, `GET ${url}`).toBe(200);
  return (await response.json()) as T;
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

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { field: string; rule: string; message: string }[];
}

/** The response is RFC 9457 Problem Details with `status`, and carries no stack trace. */
export async function expectProblem(response: Response, status: number): Promise<Problem> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    instance: expect.any(String),
  });
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/\\n\s+at /);
  return problem;
}

/** RFC 3339 date-time as `Date.toISOString()` writes it (UTC). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET with the path sent exactly as given (no `..` or `%2e` normalisation). */
export function rawGet(base: string, path: string): Promise<RawResponse> {
  const url = new URL(base);
  return within(
    new Promise<RawResponse>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path, method: "GET", agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    }),
    `GET ${path}`,
  );
}
