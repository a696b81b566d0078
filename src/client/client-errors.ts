/**
 * The errors ThingClient throws. Every one is a `ThingClientError`; those that come from
 * an HTTP answer carry its `status` and, when the body was RFC 9457 Problem Details, the
 * parsed `problem` (for our server: `type`, `title`, `status`, `detail`, `instance`, and
 * `errors` naming each invalid field). Browser-safe: no imports.
 *
 * @example
 * ```ts
 * try {
 *   await camera.writeProperty("exposureTime", 2_000_000);
 * } catch (error) {
 *   if (error instanceof HttpError && error.status === 400) console.log(error.problem?.errors);
 * }
 * ```
 */

/** RFC 9457 Problem Details, as a server sent them (every member optional on the wire). */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  /** labthings-ts: each invalid field and the schema rule it broke. */
  errors?: { field: string; rule: string; message: string }[];
  [member: string]: unknown;
}

/** Status of an action invocation (WoT HTTP Basic Profile, plus `cancelled`). */
export type InvocationStatusName = "pending" | "running" | "completed" | "failed" | "cancelled";

/** One record of an invocation's log (labthings-ts servers keep these with the status). */
export interface InvocationLogRecord {
  time?: string;
  level?: string;
  message: string;
}

/** An ActionStatus object as a server reports it (queryaction, the 201 body, SSE). */
export interface RemoteActionStatus {
  id?: string;
  href?: string;
  status: InvocationStatusName;
  output?: unknown;
  error?: ProblemDetails;
  progress?: { fraction?: number; message?: string };
  log?: InvocationLogRecord[];
  timeRequested?: string;
  timeStarted?: string;
  timeEnded?: string;
  [member: string]: unknown;
}

export interface ThingClientErrorOptions {
  /** HTTP status of the answer that caused it. */
  status?: number;
  /** The answer's Problem Details, when it had them. */
  problem?: ProblemDetails;
  /** The URL the request went to. */
  url?: string;
  cause?: unknown;
}

/** Base of every error ThingClient throws (aborts aside: those reject with the signal's reason). */
export class ThingClientError extends Error {
  override name = "ThingClientError";
  readonly status: number | undefined;
  readonly problem: ProblemDetails | undefined;
  readonly url: string | undefined;

  constructor(message: string, options: ThingClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.problem = options.problem;
    this.url = options.url;
  }
}

/** The server answered with an error status (4xx, 5xx). */
export class HttpError extends ThingClientError {
  override name = "HttpError";
  declare readonly status: number;
}

/** The server could not be reached, or the connection broke (and could not be re-opened). */
export class ConnectionError extends ThingClientError {
  override name = "ConnectionError";
}

/** An answer (or a Thing Description) is not what the WoT Profiles say it should be. */
export class ProtocolError extends ThingClientError {
  override name = "ProtocolError";
}

export type AffordanceKind = "property" | "action" | "event" | "stream" | "thing";

/**
 * The Thing Description has no such property, action, event or stream, or no form this
 * client can use for the operation (e.g. only a `longpoll` form for observeproperty).
 */
export class AffordanceNotFoundError extends ThingClientError {
  override name = "AffordanceNotFoundError";
  constructor(
    readonly kind: AffordanceKind,
    readonly affordance: string,
    message: string,
  ) {
    super(message);
  }
}

/** An action invocation ended `failed`; `problem` is the status's `error`. */
export class InvocationFailedError extends ThingClientError {
  override name = "InvocationFailedError";
  constructor(
    readonly invocation: RemoteActionStatus,
    message: string,
    options: ThingClientErrorOptions = {},
  ) {
    super(message, { problem: invocation.error, ...options });
  }
}

/** An action invocation ended `cancelled` (by someone else: our own abort rejects with its reason). */
export class InvocationCancelledError extends ThingClientError {
  override name = "InvocationCancelledError";
  constructor(
    readonly invocation: RemoteActionStatus,
    message: string,
    options: ThingClientErrorOptions = {},
  ) {
    super(message, { problem: invocation.error, ...options });
  }
}
