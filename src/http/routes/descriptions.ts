import type { FastifyInstance, FastifyRequest } from "fastify";
import { TD_MEDIA_TYPE } from "../../description/thing-description.js";
import { guardMethods } from "../method-guard.js";
import { absoluteUrl } from "../request-url.js";
import type { RouteContext } from "../route-context.js";

/**
 * `application/td+json` unless the client asked for plain JSON or is a browser, which
 * would offer an unknown `+json` type as a download rather than show it.
 */
function tdMediaType(request: FastifyRequest): string {
  const accept = request.headers.accept ?? "";
  if (accept.includes(TD_MEDIA_TYPE)) return TD_MEDIA_TYPE;
  if (accept.includes("application/json") || accept.includes("text/html"))
    return "application/json";
  return TD_MEDIA_TYPE;
}

/** `GET /{thing}/`, `GET /thing_descriptions/`, `GET /things/`. */
export function registerDescriptionRoutes(app: FastifyInstance, context: RouteContext): void {
  const { registry, descriptions, prefix } = context;
  const describe = (request: FastifyRequest, name: string) =>
    descriptions.get(name)!.describe(absoluteUrl(request, `${prefix}/${name}/`));

  app.get(
    "/things/",
    {
      schema: { tags: ["server"], summary: "URL of every Thing Description, by Thing name" },
      config: { public: true },
    },
    async (request) =>
      Object.fromEntries(
        registry.names.map((name) => [name, absoluteUrl(request, `${prefix}/${name}/`)]),
      ),
  );
  guardMethods(app, "/things/", ["GET"], "/things/");

  app.get(
    "/thing_descriptions/",
    {
      schema: { tags: ["server"], summary: "Every Thing Description, by Thing name" },
      config: { public: true },
    },
    async (request, reply) => {
      reply.type("application/json");
      return Object.fromEntries(registry.names.map((name) => [name, describe(request, name)]));
    },
  );
  guardMethods(app, "/thing_descriptions/", ["GET"], "/thing_descriptions/");

  for (const name of registry.names) {
    app.get(
      `/${name}/`,
      {
        schema: { tags: [name], summary: `Thing Description of '${name}'` },
        // Readable without a token: it is how a client learns the server wants one.
        config: { public: true },
      },
      async (request, reply) => {
        const base = absoluteUrl(request, `${prefix}/${name}/`);
        return reply.type(tdMediaType(request)).send(descriptions.get(name)!.serialize(base));
      },
    );
    guardMethods(app, `/${name}/`, ["GET"], `the Thing Description of '${name}'`);
  }
}
