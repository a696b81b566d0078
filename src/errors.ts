/**
 * The named errors of labthings-ts. Every layer throws these; the HTTP layer maps
 * them to RFC 9457 Problem Details in one place (`http/problem-details.ts`).
 */
import { LOCK_BUSY_TYPE, problemType } from "./problem-types.js";

/** One reason a value was rejected: where in the value, which schema rule, and why. */
export interface FieldError {
  /** JSON Pointer into the submitted value, prefixed by the affordance name, e.g. `/position/x`. */
  field: string;
  /** The JSON Schema keyword that failed, e.g. `maximum`, `type`, `required`. */
  rule: string;
  message: string;
}

/** Base class: carries the HTTP status and a stable problem type slug. */
export class LabThingsError extends Error {
  readonly status: number = 500;
  readonly problemType: string = "internal-error";
  override get name(): string {
    return this.constructor.name;
  }
  /** The Problem Details `type`: a `tag:` URI made from `problemType`, unless a subclass says otherwise. */
  get problemTypeUri(): string {
    return problemType(this.problemType);
  }
}

/** A submitted value breaks its schema, or a request body cannot be parsed (400). */
export class InvalidInputError extends LabThingsError {
  override readonly status = 400;
  override readonly problemType = "invalid-input";
  constructor(
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

/** Unknown Thing, affordance, invocation or blob (404). */
export class NotFoundError extends LabThingsError {
  override readonly status = 404;
  override readonly problemType = "not-found";
}

/** The affordance exists but not for this method, e.g. PUT on a read-only property (405). */
export class MethodNotAllowedError extends LabThingsError {
  override readonly status = 405;
  override readonly problemType = "method-not-allowed";
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super(message);
  }
}

/** The request conflicts with the current state, e.g. cancelling a finished action (409). */
export class ConflictError extends LabThingsError {
  override readonly status = 409;
  override readonly problemType: string = "conflict";
}

/**
 * A lock (`lock: "stage"`) is held by another operation for longer than the caller waits
 * (at once with `waitMs: 0`). Its type is labthings-fastapi's `GlobalLockBusyError` URL,
 * so that server's Python `ThingClient` raises `GlobalLockBusyError` for it.
 */
export class LockBusyError extends ConflictError {
  override readonly problemType = "lock-busy";
  override get problemTypeUri(): string {
    return LOCK_BUSY_TYPE;
  }
}

/** The server cannot take the request now, e.g. while shutting down (503). */
export class UnavailableError extends LabThingsError {
  override readonly status = 503;
  override readonly problemType = "unavailable";
}

/** A Thing class is declared wrongly (thrown when the class is defined or first exposed). */
export class ThingDefinitionError extends LabThingsError {
  override readonly problemType = "thing-definition";
}

/** One mistake in a configuration: the key (dotted path) or command-line flag, and why. */
export interface ConfigProblem {
  /** Dotted path of the config key, e.g. `limits.bodyBytes` (`""`: the config as a whole). */
  readonly key: string;
  readonly reason: string;
  /** The command-line flag that gave the value, when one did (e.g. `--port`). */
  readonly flag?: string;
}

/**
 * The configuration is wrong: names each key (or flag) and the reason, every mistake at
 * once and in the order of the file. `key` and `reason` are the first one's.
 */
export class ConfigError extends LabThingsError {
  override readonly problemType = "config";
  readonly problems: readonly ConfigProblem[];
  readonly key: string;
  readonly reason: string;

  constructor(
    key: string | readonly ConfigProblem[],
    reason = "",
    /** Where the configuration came from, for the message (a file name). */
    readonly source?: string,
  ) {
    const problems = typeof key === "string" ? [{ key, reason }] : key;
    super(configMessage(problems, source));
    this.problems = problems;
    this.key = problems[0]?.key ?? "";
    this.reason = problems[0]?.reason ?? "";
  }
}

/** `config port: must be …` for one problem; every problem on one line for several. */
function configMessage(problems: readonly ConfigProblem[], source: string | undefined): string {
  const where = source ? `config ${source}` : "config";
  const one = (p: ConfigProblem) =>
    p.flag ? `${p.flag}: ${p.reason}` : p.key ? `${p.key}: ${p.reason}` : p.reason;
  if (problems.length === 1) {
    const [problem] = problems as [ConfigProblem];
    return problem.flag ? one(problem) : `${where}${problem.key ? " " : ": "}${one(problem)}`;
  }
  return `${where}: ${problems.length} mistakes: ${problems.map(one).join("; ")}`;
}

/** A Thing could not be loaded, connected or started: names the Thing. */
export class ThingLifecycleError extends LabThingsError {
  override readonly problemType = "thing-lifecycle";
  constructor(
    readonly thing: string,
    readonly phase: "load" | "connect" | "start" | "stop",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`Thing '${thing}' failed to ${phase}: ${message}`, options);
  }
}

/**
 * The server cannot listen where it was told: the port is taken (`EADDRINUSE`), needs
 * privileges (`EACCES`), or the host is not an address of this machine (`EADDRNOTAVAIL`).
 */
export class ListenError extends LabThingsError {
  override readonly problemType = "listen";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(
      code === "EADDRINUSE"
        ? `port ${port} on ${host} is already in use`
        : code === "EACCES"
          ? `port ${port} on ${host} needs privileges this process does not have`
          : code === "EADDRNOTAVAIL"
            ? `${host} is not an address of this machine`
            : `cannot listen on ${host}:${port} (${code})`,
      options,
    );
  }
}

/** The resource cannot be served in a media type the client accepts, e.g. SSE of a non-observable property (406). */
export class NotAcceptableError extends LabThingsError {
  override readonly status = 406;
  override readonly problemType = "not-acceptable";
}

/** The request is larger than the server accepts: URL (414), headers (431) or body (413). */
export class RequestTooLargeError extends LabThingsError {
  override readonly problemType = "request-too-large";
  constructor(
    override readonly status: 413 | 414 | 431,
    message: string,
  ) {
    super(message);
  }
}

/** The client has too many open streams or event streams already (429). */
export class TooManyRequestsError extends LabThingsError {
  override readonly status = 429;
  override readonly problemType = "too-many-requests";
}

/** Authentication is on and the request has no valid bearer token (401). */
export class UnauthorizedError extends LabThingsError {
  override readonly status = 401;
  override readonly problemType = "unauthorized";
  constructor(
    message: string,
    /** The `WWW-Authenticate` challenge (RFC 6750). */
    readonly challenge: string,
  ) {
    super(message);
  }
}

/**
 * The token is valid but its role may not do this, e.g. a viewer's write (403). The
 * detail names the role needed; `challenge` is the `WWW-Authenticate` header (RFC 6750
 * `insufficient_scope`).
 */
export class ForbiddenError extends LabThingsError {
  override readonly status = 403;
  override readonly problemType = "forbidden";
  constructor(
    message: string,
    readonly challenge: string,
    /** The role the request needs. */
    readonly requiredRole: string,
  ) {
    super(message);
  }
}

/** A state-changing request sent by another site's page in a browser (403). */
export class CrossOriginError extends LabThingsError {
  override readonly status = 403;
  override readonly problemType = "cross-origin";
}

/**
 * Too many invocations are waiting or running: try again later (503 with `Retry-After`).
 */
export class QueueFullError extends LabThingsError {
  override readonly status = 503;
  override readonly problemType = "queue-full";
  constructor(
    message: string,
    /** Seconds after which a retry may succeed. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/**
 * A Thing's own code failed (a getter, a setter): 500, and unlike other 500s the detail
 * names what failed and says why, since the message comes from the instrument's driver.
 */
export class ThingFailureError extends LabThingsError {
  override readonly problemType = "thing-failure";
}
