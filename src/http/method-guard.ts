import type { FastifyInstance } from "fastify";
import { MethodNotAllowedError } from "../errors.js";

/**
 * Answer 405 with `Allow` for every method a resource does not support (instead of a
 * misleading 404), and `OPTIONS` with 204 and `Allow`. CORS preflights never get here:
 * the CORS plugin answers them in its onRequest hook.
 *
 * @param options.headRoute false when the GET route has no automatic HEAD (streams)
 */
export function guardMethods(
  app: FastifyInstance,
  url: string,
  allowed: readonly string[],
  what: string,
  options: { headRoute?: boolean } = {},
): void {
  // Fastify adds HEAD to each GET route unless told not to; `Allow` lists the methods
  // that do something (GET implies HEAD, and OPTIONS is always answered).
  const hasHead = allowed.includes("GET") && options.headRoute !== false;
  const others = app.supportedMethods.filter(
    (method) =>
      !allowed.includes(method) && method !== "OPTIONS" && (method !== "HEAD" || !hasHead),
  );
  app.route({
    method: others,
    url,
    schema: { hide: true },
    handler: async (request) => {
      throw new MethodNotAllowedError(`${request.method} is not supported on ${what}`, allowed);
    },
  });
  app.route({
    method: "OPTIONS",
    url,
    schema: { hide: true },
    handler: async (_request, reply) => reply.code(204).header("allow", allowed.join(", ")).send(),
  });
}
