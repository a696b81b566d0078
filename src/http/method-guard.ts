import type { FastifyInstance } from "fastify";
import { MethodNotAllowedError } from "../errors.js";

// OPTIONS is left to CORS preflight; HEAD comes with every GET route.
const GUARDED = ["GET", "PUT", "POST", "DELETE", "PATCH"] as const;

/** Answer 405 with `Allow` for the methods a resource does not support (instead of 404). */
export function guardMethods(
  app: FastifyInstance,
  url: string,
  allowed: readonly string[],
  what: string,
): void {
  const others = GUARDED.filter((m) => !allowed.includes(m));
  if (others.length === 0) return;
  app.route({
    method: others,
    url,
    schema: { hide: true },
    handler: async (request) => {
      throw new MethodNotAllowedError(`${request.method} is not supported on ${what}`, allowed);
    },
  });
}
