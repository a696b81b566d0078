/**
 * Every request ThingClient makes goes through here: the caller's `fetch` and default
 * headers, and one translation of failures into typed errors (an error status into
 * `HttpError` with the Problem Details, a network failure into `ConnectionError`, an
 * abort into the signal's own reason). Browser-safe: only `fetch` and `Headers`.
 */
import { ConnectionError, HttpError, type ProblemDetails, ProtocolError } from "./client-errors.js";
import { isJsonType } from "./form-selection.js";

export type FetchFunction = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>;

export interface SendOptions {
  method?: string;
  /** The Accept header. */
  accept?: string;
  /** A JSON-able value sent as the body with `contentType`. */
  json?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/** Longest piece of a non-Problem error body quoted in an error message. */
const QUOTED_BODY_CHARS = 200;

export class HttpRequester {
  readonly #fetch: FetchFunction;
  readonly #headers: Headers;

  constructor(fetchFunction: FetchFunction | undefined, headers: HeadersInit | undefined) {
    // Calling a detached `window.fetch` throws "Illegal invocation" in browsers.
    this.#fetch = fetchFunction ?? ((input, init) => globalThis.fetch(input, init));
    this.#headers = new Headers(headers);
  }

  /**
   * Send a request; resolves with any 2xx response (body unread). Error statuses reject
   * with `HttpError` unless `acceptStatus` lets them through.
   */
  async send(
    url: string,
    options: SendOptions = {},
    acceptStatus: (status: number) => boolean = () => false,
  ): Promise<Response> {
    const method = options.method ?? "GET";
    const headers = new Headers(this.#headers);
    if (options.accept) headers.set("accept", options.accept);
    for (const [name, value] of Object.entries(options.headers ?? {})) headers.set(name, value);
    let body: string | undefined;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers.set("content-type", options.contentType ?? "application/json");
    }
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        body,
        signal: options.signal ?? null,
      });
    } catch (error) {
      options.signal?.throwIfAborted();
      throw new ConnectionError(`${method} ${url} failed: ${messageOf(error)}`, {
        url,
        cause: error,
      });
    }
    if (!response.ok && !acceptStatus(response.status))
      throw await httpError(method, url, response);
    return response;
  }

  /** Send and parse a JSON answer; `undefined` for 204 or an empty body. */
  async json<T>(url: string, options: SendOptions = {}): Promise<T | undefined> {
    const response = await this.send(url, { accept: "application/json", ...options });
    return readJson<T>(response, options.method ?? "GET", url);
  }
}

/** Parse a response body as JSON; `undefined` for 204 or an empty body. */
export async function readJson<T>(
  response: Response,
  method: string,
  url: string,
): Promise<T | undefined> {
  if (response.status === 204) return undefined;
  const text = await response.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ProtocolError(
      `${method} ${url} answered ${response.status} with a body that is not JSON: ${quote(text)}`,
      { url, status: response.status, cause: error },
    );
  }
}

/** An `HttpError` for an error response, with its Problem Details when it has them. */
export async function httpError(
  method: string,
  url: string,
  response: Response,
): Promise<HttpError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The body broke off: the status alone still says what happened.
  }
  let problem: ProblemDetails | undefined;
  if (isJsonType(response.headers.get("content-type"))) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        problem = parsed as ProblemDetails;
      }
    } catch {
      // Not JSON after all: quoted in the message below.
    }
  }
  const reason =
    problem?.detail ?? problem?.title ?? (text.trim() === "" ? response.statusText : quote(text));
  return new HttpError(`${method} ${url} → ${response.status}: ${reason}`, {
    status: response.status,
    problem,
    url,
  });
}

function quote(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > QUOTED_BODY_CHARS ? `${trimmed.slice(0, QUOTED_BODY_CHARS)}…` : trimmed;
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    // Node's fetch hides the reason (ECONNREFUSED, …) in `cause`.
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
