/**
 * Optional bearer-token authentication (RFC 6750) with two roles. With tokens configured
 * every route answers 401 Problem Details without one, except what only describes the
 * server (the Thing Descriptions, the API docs, the dashboard's static shell): clients must
 * be able to read a TD to learn that it wants a token. `<img>`, EventSource and browser
 * websockets cannot set headers, so GET requests may carry `?access_token=` instead.
 *
 * Roles follow HTTP's own split: a `viewer` may use the safe methods (GET, HEAD, OPTIONS:
 * TDs, reads, observation, streams, snapshots, invocation status, blobs, websockets, which
 * only observe); an `operator` may also write, invoke and cancel. A viewer's unsafe
 * request is 403 Problem Details naming the role it needs.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { SecurityScheme } from "../description/thing-description.js";
import { ConfigError, ForbiddenError, UnauthorizedError } from "../errors.js";

/** The TD's security block when authentication is on. */
export const BEARER_SECURITY: Record<string, SecurityScheme> = {
  bearer_sc: {
    scheme: "bearer",
    in: "header",
    name: "Authorization",
    description:
      "Authorization: Bearer <token>. GET requests (streams, event streams, websockets) may send ?access_token=<token> instead.",
  },
};

/** The query parameter RFC 6750 §2.3 names for a token in the URL. */
export const TOKEN_QUERY_PARAMETER = "access_token";

/** Shortest token accepted: anything shorter is guessable over a lab network. */
export const MIN_TOKEN_LENGTH = 16;

/** What a token lets its holder do. */
export const ACCESS_ROLES = ["viewer", "operator"] as const;
export type AccessRole = (typeof ACCESS_ROLES)[number];

/** One accepted token and its role. */
export interface AccessToken {
  token: string;
  role: AccessRole;
}

/** What each role may do, as `GET /access/` reports it. */
export const ROLE_ALLOWS: Record<AccessRole, string> = {
  viewer:
    "read: Thing Descriptions, properties, observation, events, streams, snapshots, invocation status, blobs",
  operator: "everything a viewer may, and write properties, invoke actions, cancel invocations",
};

/** Methods that change nothing (RFC 9110 §9.2.1): all a viewer may use. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const REALM = 'Bearer realm="labthings-ts"';

/** Route option `config: { public: true }` marks a route readable without the token. */
export interface PublicRouteConfig {
  public?: boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The role of the request's token (`operator` when authentication is off). */
    accessRole?: AccessRole;
  }
}

export class BearerAuthentication {
  /** Token digest (hex) → role; digests, so a lookup leaks nothing about the tokens. */
  readonly #roles = new Map<string, AccessRole>();

  constructor(
    tokens: readonly AccessToken[],
    /** Paths under it (e.g. `/docs`) are public too: plugin routes carry no config. */
    private readonly publicPrefixes: readonly string[] = [],
  ) {
    if (tokens.length === 0) throw new ConfigError("auth", "no token given");
    for (const { token, role } of tokens) {
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new ConfigError(
          "auth",
          `a token is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (e.g. 'openssl rand -hex 24')`,
        );
      }
      if (!ACCESS_ROLES.includes(role)) {
        throw new ConfigError("auth", `unknown role '${role}' (roles: ${ACCESS_ROLES.join(", ")})`);
      }
      const key = digest(token).toString("hex");
      const known = this.#roles.get(key);
      if (known !== undefined && known !== role) {
        throw new ConfigError("auth", `the same token is given as ${known} and as ${role}`);
      }
      this.#roles.set(key, role);
    }
  }

  /** The roles that have at least one token. */
  get roles(): AccessRole[] {
    return ACCESS_ROLES.filter((role) => [...this.#roles.values()].includes(role));
  }

  /**
   * Throw UnauthorizedError unless the request is public or carries a known token, and
   * ForbiddenError when its token's role may not use the method. Sets `accessRole`.
   */
  check(request: FastifyRequest): void {
    const method = request.method;
    // CORS preflights never carry credentials; the actual request is checked.
    const preflight =
      method === "OPTIONS" &&
      request.headers.origin !== undefined &&
      request.headers["access-control-request-method"] !== undefined;
    if (preflight) return;
    const readOnly = method === "GET" || method === "HEAD";
    const presented =
      bearerToken(request.headers.authorization) ??
      (readOnly ? queryToken(request.url) : undefined);
    if (presented === undefined) {
      if (readOnly && this.#isPublic(request)) return;
      throw new UnauthorizedError(
        "This server requires a bearer token: send 'Authorization: Bearer <token>' (or ?access_token=<token> on a GET).",
        REALM,
      );
    }
    const role = this.#roleOf(presented);
    if (role === undefined) {
      if (readOnly && this.#isPublic(request)) return;
      throw new UnauthorizedError(
        "The bearer token is not valid.",
        `${REALM}, error="invalid_token"`,
      );
    }
    request.accessRole = role;
    checkRole(request, role);
  }

  #roleOf(token: string): AccessRole | undefined {
    const candidate = digest(token);
    for (const [key, role] of this.#roles) {
      // Constant time per comparison: how far a wrong token matches is never observable.
      if (timingSafeEqual(candidate, Buffer.from(key, "hex"))) return role;
    }
    return undefined;
  }

  #isPublic(request: FastifyRequest): boolean {
    if ((request.routeOptions.config as PublicRouteConfig | undefined)?.public) return true;
    const path = request.url.split("?", 1)[0]!;
    return this.publicPrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
  }
}

/** 403 unless `role` may use the request's method. */
function checkRole(request: FastifyRequest, role: AccessRole): void {
  if (role === "operator" || SAFE_METHODS.has(request.method)) return;
  const path = redactToken(request.url).split("?", 1)[0];
  throw new ForbiddenError(
    `${request.method} ${path} needs a token with the 'operator' role (it writes, invokes or cancels); this token has the '${role}' role, which may only read and observe.`,
    `${REALM}, error="insufficient_scope", scope="operator"`,
    "operator",
  );
}

/**
 * `url` without its `access_token` parameter (however its name is percent-encoded): for
 * every URL the server echoes (Problem Details `instance`, logs).
 */
export function redactToken(url: string): string {
  const query = url.indexOf("?");
  if (query === -1) return url;
  const kept = url
    .slice(query + 1)
    .split("&")
    .filter((pair) => parameterName(pair) !== TOKEN_QUERY_PARAMETER);
  return kept.length > 0 ? `${url.slice(0, query)}?${kept.join("&")}` : url.slice(0, query);
}

function parameterName(pair: string): string {
  const name = pair.split("=", 1)[0]!.replace(/\+/g, " ");
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/**
 * Fastify's request serializer for log lines, with the token removed from the URL: any
 * log line about a request (Fastify's own included) goes through it.
 */
export function redactedRequest(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactToken(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

function digest(token: string): Buffer {
  // Equal-length digests let timingSafeEqual compare tokens of any length.
  return createHash("sha256").update(token).digest();
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

function queryToken(url: string): string | undefined {
  const query = url.indexOf("?");
  if (query === -1) return undefined;
  return new URLSearchParams(url.slice(query + 1)).get(TOKEN_QUERY_PARAMETER) ?? undefined;
}
