/**
 * Optional bearer-token authentication (RFC 6750). With a token configured every route
 * answers 401 Problem Details without it, except what only describes the server (the
 * Thing Descriptions, the API docs, the dashboard's static shell): clients must be able
 * to read a TD to learn that it wants a token. `<img>`, EventSource and browser
 * websockets cannot set headers, so GET requests may carry `?access_token=` instead.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { SecurityScheme } from "../description/thing-description.js";
import { ConfigError, UnauthorizedError } from "../errors.js";

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

const REALM = 'Bearer realm="labthings-ts"';

/** Route option `config: { public: true }` marks a route readable without the token. */
export interface PublicRouteConfig {
  public?: boolean;
}

export class BearerAuthentication {
  readonly #digest: Buffer;

  constructor(
    token: string,
    /** Paths under it (e.g. `/docs`) are public too: plugin routes carry no config. */
    private readonly publicPrefixes: readonly string[] = [],
  ) {
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(
        "auth",
        `the token is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (e.g. 'openssl rand -hex 24')`,
      );
    }
    this.#digest = digest(token);
  }

  /** Throw UnauthorizedError unless the request is public or carries the token. */
  check(request: FastifyRequest): void {
    const method = request.method;
    // CORS preflights never carry credentials; the actual request is checked.
    const preflight =
      method === "OPTIONS" &&
      request.headers.origin !== undefined &&
      request.headers["access-control-request-method"] !== undefined;
    if (preflight) return;
    const readOnly = method === "GET" || method === "HEAD";
    if (readOnly && this.#isPublic(request)) return;
    const presented =
      bearerToken(request.headers.authorization) ??
      (readOnly ? queryToken(request.url) : undefined);
    if (presented === undefined) {
      throw new UnauthorizedError(
        "This server requires a bearer token: send 'Authorization: Bearer <token>' (or ?access_token=<token> on a GET).",
        REALM,
      );
    }
    if (!timingSafeEqual(digest(presented), this.#digest)) {
      throw new UnauthorizedError(
        "The bearer token is not valid.",
        `${REALM}, error="invalid_token"`,
      );
    }
  }

  #isPublic(request: FastifyRequest): boolean {
    if ((request.routeOptions.config as PublicRouteConfig | undefined)?.public) return true;
    const path = request.url.split("?", 1)[0]!;
    return this.publicPrefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
  }
}

/** Hide a URL's token from logs. */
export function redactToken(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/g, "$1[redacted]");
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
