import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";

/**
 * OpenAPI 3.1 generated from the route schemas, which are the affordances' own
 * schemas: the same declarations as validation and the TD. Must be registered
 * before the routes it describes.
 */
export async function registerOpenApi(app: FastifyInstance, title: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title,
        version: "1",
        description:
          "HTTP API of the Things served here (W3C WoT HTTP Basic Profile). Every Thing also publishes a Thing Description at /{thing}/.",
      },
    },
  });
}

/** The interactive docs page (`/docs`) and the document itself (`/openapi.json`). */
export async function registerDocsPages(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    uiConfig: { docExpansion: "list", deepLinking: true },
  });
  app.get("/openapi.json", { schema: { hide: true }, config: { public: true } }, async () =>
    app.swagger(),
  );
}
