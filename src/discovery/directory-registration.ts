/**
 * Registering this server's TDs with a W3C Thing Description Directory (WoT Discovery,
 * "Things API"): each TD, which has an `id`, is created or replaced with
 * `PUT /things/{id}` (`application/td+json`), carrying `registration.ttl` so the directory
 * drops it if the server vanishes; it is renewed at half its TTL with an empty JSON merge
 * patch (`PATCH /things/{id}`, `{}`, which the spec names for extending an expiry; a
 * directory without PATCH gets the PUT again); it is deleted (`DELETE /things/{id}`) in the
 * shutdown sequence. A directory that is down is retried with backoff in the background:
 * nothing here delays start or shutdown beyond the bound it is given.
 */
import type { ThingLogger } from "../model/logger.js";
import { Backoff } from "../runtime/backoff.js";
import { errorMessage } from "../runtime/settle.js";

export const DISCOVERY_CONTEXT = "https://www.w3.org/2022/wot/discovery";
const TD_TYPE = "application/td+json";
const MERGE_PATCH_TYPE = "application/merge-patch+json";
/** No single request waits longer than this (the directory may hang rather than refuse). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface DirectoryOptions {
  /** The directory's base URL; its Things API is at `<url>/things`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`, to this directory only (redirects are not followed). */
  token?: string;
  /** Registration time-to-live in seconds; renewed at half of it. Default 600. */
  ttlSeconds?: number;
  /** First and longest pause between retries. Default 1 s and 60 s. */
  retryMs?: { first: number; max: number };
}

/** One TD to keep registered: its id and how to make it now (with the server's public base). */
export interface DirectoryEntry {
  name: string;
  id: string;
  describe: () => Record<string, unknown>;
}

type State = "pending" | "registered" | "retrying";

interface Registration {
  readonly entry: DirectoryEntry;
  state: State;
  /** Set once a PUT may have reached the directory: shutdown deletes it then. */
  submitted: boolean;
  timer: NodeJS.Timeout | undefined;
  readonly backoff: Backoff;
  /** The directory refused a client error once: further refusals are logged quietly. */
  refusedBefore: boolean;
}

/** What a directory said when it refused: its Problem Details, when it sent them. */
export interface DirectoryProblem {
  status: number;
  type?: string;
  title?: string;
  detail?: string;
  validationErrors?: unknown;
}

export class DirectoryRegistration {
  readonly #things: URL;
  readonly #ttl: number;
  readonly #registrations = new Map<string, Registration>();
  readonly #inFlight = new Set<AbortController>();
  /** The directory answered 405/501 to PATCH: renew with PUT from now on. */
  #renewWithPut = false;
  #stopped = false;
  /** At shutdown: the Things whose DELETE has not succeeded (yet). */
  readonly #undeleted = new Set<string>();

  constructor(
    private readonly options: DirectoryOptions,
    private readonly logger: ThingLogger,
  ) {
    this.#things = new URL("things/", options.url.endsWith("/") ? options.url : `${options.url}/`);
    this.#ttl = options.ttlSeconds ?? 600;
  }

  /** Where the Things API is, for logs. */
  get thingsUrl(): string {
    return this.#things.href;
  }

  /** After `withdraw()` began: the Things not (yet) deleted from the directory. */
  get undeleted(): string[] {
    return [...this.#undeleted].sort();
  }

  /** Names of the Things being registered. */
  get names(): string[] {
    return [...this.#registrations.values()].map((r) => r.entry.name);
  }

  /** Thing name → `registered`, `pending` or `retrying`. */
  get states(): Record<string, State> {
    return Object.fromEntries(
      [...this.#registrations.values()].map((r) => [r.entry.name, r.state]),
    );
  }

  /** Begin registering every entry, in the background. Returns at once. */
  start(entries: readonly DirectoryEntry[]): void {
    for (const entry of entries) {
      const registration: Registration = {
        entry,
        state: "pending",
        submitted: false,
        timer: undefined,
        backoff: new Backoff(this.options.retryMs?.first, this.options.retryMs?.max),
        refusedBefore: false,
      };
      this.#registrations.set(entry.id, registration);
      void this.#register(registration);
    }
  }

  /**
   * Stop renewing and delete every TD that may be registered, all at once, within
   * `timeoutMs`. Resolves with the names deleted and those that could not be.
   */
  async withdraw(timeoutMs: number): Promise<{ deleted: string[]; failed: string[] }> {
    this.#stopped = true;
    for (const registration of this.#registrations.values()) clearTimeout(registration.timer);
    for (const controller of this.#inFlight) controller.abort(new Error("shutting down"));
    const signal = AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs)));
    const submitted = [...this.#registrations.values()].filter((r) => r.submitted);
    for (const { entry } of submitted) this.#undeleted.add(entry.name);
    const outcomes = await Promise.all(
      submitted.map(async ({ entry }) => {
        try {
          const response = await this.#request("DELETE", entry.id, undefined, signal, true);
          // 404: already gone (expired, or the directory restarted): nothing left to delete.
          if (response.ok || response.status === 404) {
            this.#undeleted.delete(entry.name);
            return { name: entry.name, ok: true };
          }
          this.#logRefusal(entry, "DELETE", await readProblem(response), "error");
        } catch (error) {
          this.logger.warn(
            { thing: entry.name, directory: this.thingsUrl, err: errorMessage(error) },
            `TD directory: could not delete '${entry.name}' at shutdown; it expires in at most ${this.#ttl} s`,
          );
        }
        return { name: entry.name, ok: false };
      }),
    );
    return {
      deleted: outcomes.filter((o) => o.ok).map((o) => o.name),
      failed: outcomes.filter((o) => !o.ok).map((o) => o.name),
    };
  }

  async #register(registration: Registration): Promise<void> {
    const { entry } = registration;
    const body = JSON.stringify(enrich(entry.describe(), this.#ttl));
    registration.submitted = true;
    await this.#attempt(registration, "PUT", body, TD_TYPE, (response) => {
      if (response.status === 201 || response.status === 204 || response.status === 200) {
        const first = registration.state !== "registered";
        registration.state = "registered";
        registration.backoff.reset();
        registration.refusedBefore = false;
        if (first) {
          this.logger.info(
            { thing: entry.name, id: entry.id, directory: this.thingsUrl, ttl: this.#ttl },
            `registered '${entry.name}' with the TD directory`,
          );
        }
        this.#schedule(registration, (this.#ttl * 1000) / 2, () => this.#renew(registration));
        return true;
      }
      return false;
    });
  }

  async #renew(registration: Registration): Promise<void> {
    if (this.#renewWithPut) return this.#register(registration);
    await this.#attempt(registration, "PATCH", "{}", MERGE_PATCH_TYPE, (response) => {
      if (response.ok) {
        registration.backoff.reset();
        this.#schedule(registration, (this.#ttl * 1000) / 2, () => this.#renew(registration));
        return true;
      }
      if (response.status === 404) {
        // Expired or lost (the directory restarted): register it anew.
        this.logger.info(
          { thing: registration.entry.name, directory: this.thingsUrl },
          "TD directory no longer holds the TD: registering it again",
        );
        void this.#register(registration);
        return true;
      }
      if (response.status === 405 || response.status === 501) {
        this.#renewWithPut = true;
        void this.#register(registration);
        return true;
      }
      return false;
    });
  }

  /**
   * One request; `handled` decides what a response means. Anything else (a network error,
   * a 5xx, a refusal) is logged with the directory's Problem Details and retried later.
   */
  async #attempt(
    registration: Registration,
    method: "PUT" | "PATCH",
    body: string,
    contentType: string,
    handled: (response: Response) => boolean,
  ): Promise<void> {
    if (this.#stopped) return;
    const { entry } = registration;
    let retryAfterMs: number | undefined;
    try {
      const response = await this.#request(method, entry.id, { body, contentType });
      if (handled(response)) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      const problem = await readProblem(response);
      retryAfterMs = retryAfter(response);
      const clientError =
        response.status >= 400 &&
        response.status < 500 &&
        response.status !== 408 &&
        response.status !== 429;
      this.#logRefusal(
        entry,
        method,
        problem,
        clientError && !registration.refusedBefore ? "error" : clientError ? "debug" : "warn",
      );
      if (clientError) registration.refusedBefore = true;
    } catch (error) {
      if (this.#stopped) return;
      this.logger.warn(
        { thing: entry.name, directory: this.thingsUrl, err: errorMessage(error) },
        `TD directory unreachable (${method} '${entry.name}'): retrying`,
      );
    }
    registration.state = registration.state === "registered" ? "registered" : "retrying";
    const pause = Math.max(retryAfterMs ?? 0, registration.backoff.next());
    this.#schedule(registration, pause, () =>
      method === "PATCH" ? this.#renew(registration) : this.#register(registration),
    );
  }

  #schedule(registration: Registration, delayMs: number, run: () => Promise<void>): void {
    if (this.#stopped) return;
    clearTimeout(registration.timer);
    registration.timer = setTimeout(() => void run(), delayMs);
    registration.timer.unref();
  }

  async #request(
    method: string,
    id: string,
    content?: { body: string; contentType: string },
    signal?: AbortSignal,
    shuttingDown = false,
  ): Promise<Response> {
    const controller = new AbortController();
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signals = [controller.signal, timeout, ...(signal ? [signal] : [])];
    if (!shuttingDown) this.#inFlight.add(controller);
    try {
      const headers: Record<string, string> = {
        accept: "application/json, application/problem+json",
      };
      if (content) headers["content-type"] = content.contentType;
      if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
      const response = await fetch(new URL(encodeURIComponent(id), this.#things), {
        method,
        headers,
        body: content?.body,
        signal: AbortSignal.any(signals),
        // The token is for this directory only: a redirect elsewhere is not followed.
        redirect: "manual",
      });
      return response;
    } finally {
      this.#inFlight.delete(controller);
    }
  }

  #logRefusal(
    entry: DirectoryEntry,
    method: string,
    problem: DirectoryProblem,
    level: "error" | "warn" | "debug",
  ): void {
    const what = problem.title ?? `HTTP ${problem.status}`;
    const detail = problem.detail ? `: ${problem.detail}` : "";
    this.logger[level](
      { thing: entry.name, id: entry.id, directory: this.thingsUrl, method, problem },
      `TD directory refused ${method} of '${entry.name}' (${problem.status} ${what}${detail})`,
    );
  }
}

/** The Enriched TD sent to the directory: the discovery context and `registration.ttl`. */
export function enrich(td: Record<string, unknown>, ttlSeconds: number): Record<string, unknown> {
  const context = Array.isArray(td["@context"]) ? [...td["@context"]] : [td["@context"]];
  if (!context.includes(DISCOVERY_CONTEXT)) context.splice(1, 0, DISCOVERY_CONTEXT);
  return { ...td, "@context": context, registration: { ttl: ttlSeconds } };
}

async function readProblem(response: Response): Promise<DirectoryProblem> {
  const problem: DirectoryProblem = { status: response.status };
  if (response.status >= 300 && response.status < 400) {
    problem.detail = `redirected to ${response.headers.get("location") ?? "?"}: not followed (the token goes to the configured directory only)`;
  }
  const type = response.headers.get("content-type") ?? "";
  if (!/json/i.test(type)) {
    await response.body?.cancel().catch(() => {});
    return problem;
  }
  try {
    const body = (await response.json()) as Record<string, unknown>;
    for (const key of ["type", "title", "detail"] as const) {
      if (typeof body[key] === "string") problem[key] = body[key] as string;
    }
    if (body.validationErrors !== undefined) problem.validationErrors = body.validationErrors;
  } catch {}
  return problem;
}

function retryAfter(response: Response): number | undefined {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 3600) * 1000 : undefined;
}
