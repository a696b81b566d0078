/**
 * Limits that keep bad input and bad clients from hurting the server: sizes of the URL,
 * headers, body and JSON nesting; how long a client may take to send its request
 * (slow-loris); and, in LongLivedRegistry, how many streams one address may hold.
 * Every refusal is Problem Details, including the ones Node answers before Fastify
 * sees a request (header overflow, timeouts, malformed HTTP).
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyBaseLogger } from "fastify";
import { InvalidInputError, RequestTooLargeError } from "../errors.js";
import { DEFAULT_MAX_PENDING_INVOCATIONS } from "../runtime/invocation-manager.js";
import { problemType, writeProblemToSocket } from "./problem-details.js";

export interface RequestLimits {
  /** Largest request body in bytes (413). */
  bodyBytes: number;
  /** Longest request target (path and query) in bytes (414). */
  urlBytes: number;
  /** Largest request head (request line and headers) in bytes (431). */
  headerBytes: number;
  /** Deepest nesting of arrays and objects in a JSON body (400). */
  jsonDepth: number;
  /** Time a client has to send its request head; slower ones get 408 and are closed. */
  headersTimeoutMs: number;
  /** Time a client has to send its whole request, body included (408). */
  requestTimeoutMs: number;
  /** Open streams, event streams and websockets per client address (429); 0: no cap. */
  streamsPerClient: number;
  /** Action invocations accepted and not yet finished, server-wide (503 + Retry-After); 0: no cap. */
  pendingInvocations: number;
}

export const DEFAULT_LIMITS: RequestLimits = {
  bodyBytes: 1024 * 1024,
  urlBytes: 8 * 1024,
  headerBytes: 16 * 1024,
  jsonDepth: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  streamsPerClient: 64,
  pendingInvocations: DEFAULT_MAX_PENDING_INVOCATIONS,
};

/** How often Node checks connections against the timeouts (its default is 30 s). */
export const TIMEOUT_CHECK_INTERVAL_MS = 500;

/** 414 for a request target longer than the limit (checked before routing). */
export function checkUrlLength(url: string, limits: RequestLimits): void {
  if (url.length > limits.urlBytes) {
    throw new RequestTooLargeError(
      414,
      `The URL is ${url.length} bytes long; this server accepts at most ${limits.urlBytes}.`,
    );
  }
}

/**
 * 400 when JSON nests deeper than `maxDepth`. A linear scan before parsing, so a body
 * of a million `[` never reaches the (recursive) parser.
 */
export function checkJsonDepth(text: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) {
        throw new InvalidInputError(
          `The JSON body nests deeper than ${maxDepth} levels, the most this server accepts.`,
        );
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** The Node HTTP server options that enforce the size and time limits. */
export function httpServerOptions(limits: RequestLimits) {
  return {
    maxHeaderSize: limits.headerBytes,
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
  };
}

/**
 * Answer what Node rejects before any route runs (oversized head, a request that
 * arrives too slowly, malformed HTTP) with Problem Details, then close the connection.
 */
export function clientErrorHandler(limits: RequestLimits, logger: FastifyBaseLogger) {
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    let status: number;
    let kind: string;
    let detail: string;
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      status = 408;
      kind = "request-timeout";
      detail = `The request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms).`;
    } else if (error.code === "HPE_HEADER_OVERFLOW") {
      status = 431;
      kind = "request-too-large";
      detail = `The request line and headers exceed ${limits.headerBytes} bytes, the most this server accepts.`;
    } else {
      status = 400;
      kind = "malformed-request";
      detail = `The request is not valid HTTP/1.1 (${error.code ?? error.message}).`;
    }
    // Not the error itself: Node's parse errors carry the raw request (`rawPacket`), and
    // with it any token in the URL or the Authorization header.
    logger.debug(
      { err: { code: error.code, message: error.message }, remote: socket.remoteAddress },
      "client error",
    );
    writeProblemToSocket(socket, {
      type: problemType(kind),
      title: STATUS_CODES[status] ?? "Error",
      status,
      detail,
    });
  };
}
