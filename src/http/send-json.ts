import type { FastifyReply } from "fastify";

/**
 * Send any JSON value. Fastify would send a bare string as `text/plain` and refuse
 * `undefined`; a property's value can be either, so serialise here.
 */
export function sendJson(
  reply: FastifyReply,
  value: unknown,
  contentType = "application/json",
): FastifyReply {
  return reply.type(contentType).send(JSON.stringify(value ?? null));
}
