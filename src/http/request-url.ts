import type { FastifyRequest } from "fastify";

/**
 * The absolute URL clients used to reach `path` on this server: the scheme and host of
 * the request (forwarded ones when `trustProxy` is on), so TDs behind a reverse proxy
 * point back through it.
 */
export function absoluteUrl(request: FastifyRequest, path: string): string {
  return `${request.protocol}://${request.host}${path}`;
}
