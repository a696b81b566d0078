/**
 * RFC 9457 Problem Details: the one place where errors become HTTP responses.
 * Clients never see a stack trace; the server log always gets the full error.
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { FieldError } from "../errors.js";
import {
  ForbiddenError,
  InvalidInputError,
  LabThingsError,
  MethodNotAllowedError,
  QueueFullError,
  ThingFailureError,
  UnauthorizedError,
  UnavailableError,
} from "../errors.js";
import { redactToken } from "./authentication.js";

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

export interface ProblemDetails {
  /**
   * A URI naming the kind of problem: `tag:labthings-ts,2026:<kind>`, `about:blank`, or
   * for the problems labthings-fastapi's client recognises, that project's URL (problem-types.ts).
   */
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The request's path; absent when Node refused the request before it was parsed. */
  instance?: string;
  /** For invalid input: each field that was wrong, and the schema rule it broke. */
  errors?: FieldError[];
}

import { problemType } from "../problem-types.js";

export { problemType };

interface HttpishError {
  statusCode?: number;
  code?: string;
  message?: string;
}

/**
 * Map any thrown value to Problem Details plus the headers that go with it. `url` (the
 * request's) becomes `instance` without its access token.
 */
export function toProblem(
  error: unknown,
  url: string,
): { problem: ProblemDetails; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const instance = redactToken(url);
  if (error instanceof LabThingsError && error.status < 500) {
    const problem: ProblemDetails = {
      type: error.problemTypeUri,
      title: STATUS_CODES[error.status] ?? "Error",
      status: error.status,
      detail: error.message,
      instance,
    };
    if (error instanceof InvalidInputError && error.errors.length > 0)
      problem.errors = error.errors;
    if (error instanceof MethodNotAllowedError) headers.allow = error.allow.join(", ");
    if (error instanceof UnauthorizedError || error instanceof ForbiddenError) {
      headers["www-authenticate"] = error.challenge;
    }
    return { problem, headers };
  }
  // Errors Fastify raises for the request itself (body too large, bad JSON, bad media type).
  const httpish = error as HttpishError;
  const status = httpish?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return {
      problem: {
        type: problemType(fastifyProblemKind(httpish, status)),
        title: STATUS_CODES[status] ?? "Error",
        status,
        detail: fastifyDetail(httpish),
        instance,
      },
      headers,
    };
  }
  // Server-side errors whose message is for the client: a 503's reason, and what a
  // Thing's own code (getter, setter) said. Anything else stays in the log.
  const shown =
    error instanceof ThingFailureError || (error instanceof LabThingsError && error.status === 503);
  if (error instanceof QueueFullError) headers["retry-after"] = String(error.retryAfterSeconds);
  return {
    problem: {
      type: shown ? error.problemTypeUri : "about:blank",
      title: STATUS_CODES[shown ? error.status : 500]!,
      status: shown ? error.status : 500,
      detail: shown
        ? error.message
        : "The server failed to handle this request; the server log has the details.",
      instance,
    },
    headers,
  };
}

/** Our problem type for a refusal Fastify made while reading the request. */
function fastifyProblemKind(error: HttpishError, status: number): string {
  switch (error.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "invalid-json";
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "request-too-large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported-media-type";
    default:
      return status === 404 ? "not-found" : "malformed-request";
  }
}

function fastifyDetail(error: HttpishError): string {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "The request body is larger than this server accepts.";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "Unsupported Content-Type: send JSON with 'Content-Type: application/json'.";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "The request body is empty; a JSON value was expected.";
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return `The request body is not valid JSON: ${error.message ?? ""}`.trim();
    default:
      return error.message ?? "Bad request";
  }
}

export function sendProblem(
  reply: FastifyReply,
  problem: ProblemDetails,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(problem.status)
    .headers(headers)
    .type(PROBLEM_MEDIA_TYPE)
    .send(JSON.stringify(problem));
}

/** Fastify error handler: every error leaves as Problem Details; 5xx are logged in full. */
export function handleError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const { problem, headers } = toProblem(error, request.url);
  if (error instanceof UnavailableError || error instanceof QueueFullError) {
    // Foreseen refusals (hardware away, queue full): a retrying client would fill the log
    // with stacks that say nothing more than the message.
    request.log.warn({ url: redactToken(request.url), reason: error.message }, "request refused");
  } else if (problem.status >= 500) {
    request.log.error({ err: error, url: redactToken(request.url) }, "request failed");
  }
  return sendProblem(reply, problem, headers);
}

/**
 * Write Problem Details straight to a socket and close it: for refusals made before
 * Fastify has a reply (malformed HTTP, oversized headers, timeouts, failed websocket
 * handshakes). Nothing is written when a response has already started on the socket.
 */
export function writeProblemToSocket(
  socket: Socket,
  problem: ProblemDetails,
  options: { headers?: Record<string, string>; head?: boolean } = {},
): void {
  const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || started?.headersSent) {
    socket.destroy();
    return;
  }
  const body = options.head ? "" : JSON.stringify(problem);
  const extra = Object.entries(options.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: ${PROBLEM_MEDIA_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
  // A client that never reads must not keep the socket: cut it if the end stalls.
  setTimeout(() => socket.destroy(), 1000).unref();
}
