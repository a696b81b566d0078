import type { FastifyInstance } from "fastify";
import type { ServerDescription } from "../../description/server-description.js";
import { WELL_KNOWN_PATH } from "../../description/server-description.js";
import { TD_MEDIA_TYPE } from "../../description/thing-description.js";
import { guardMethods } from "../method-guard.js";
import { absoluteUrl } from "../request-url.js";

/**
 * `GET /.well-known/wot` (and HEAD): the server's TD, linking every Thing's TD. Always at
 * the origin's root (RFC 8615), also when everything else is served under a prefix.
 */
export function registerWellKnownRoute(
  app: FastifyInstance,
  description: ServerDescription,
  prefix: string,
): void {
  app.get(
    WELL_KNOWN_PATH,
    {
      schema: { tags: ["server"], summary: "The server's Thing Description (WoT Discovery)" },
      config: { public: true },
    },
    async (request, reply) => {
      const json = request.headers.accept?.includes("text/html") ? "application/json" : undefined;
      return reply
        .type(json ?? TD_MEDIA_TYPE)
        .send(JSON.stringify(description.describe(absoluteUrl(request, `${prefix}/`))));
    },
  );
  guardMethods(app, WELL_KNOWN_PATH, ["GET"], "the server's Thing Description");
}
