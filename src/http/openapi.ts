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
          "HTTP API of the Things served here (W3C WoT HTTP Basic Profile). Every Thing also publishes a Thing Description at /{thing}/; the dashboard is at /.",
      },
    },
  });
}

/** The project's name as the docs page's logo (the page's top bar is dark). */
const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="190" height="40" viewBox="0 0 190 40">
<circle cx="18" cy="20" r="13" fill="none" stroke="#e7dcff" stroke-width="3"/>
<circle cx="18" cy="20" r="4" fill="#e7dcff"/>
<text x="40" y="27" font-family="system-ui, sans-serif" font-size="20" font-weight="600" fill="#ffffff">labthings-ts</text>
</svg>`;

/** The same mark as the favicon. */
const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<circle cx="16" cy="16" r="12" fill="#5b2a86"/><circle cx="16" cy="16" r="4" fill="#ffffff"/>
</svg>`;

/** The top bar in the dashboard's colours. */
const THEME_CSS = `.swagger-ui .topbar { background: #1d1b26; }
.swagger-ui .topbar .download-url-wrapper .select-label { color: #e7dcff; }
.swagger-ui .topbar .download-url-wrapper .select-label select { border-color: #5b2a86; }`;

/**
 * The interactive docs page (`/docs`) and the document itself (`/openapi.json`), branded
 * as labthings-ts. Swagger UI's top bar names `/openapi.json` (the `urls` entry: the
 * plugin itself always loads its own copy at `/docs/json`, the same document).
 */
export async function registerDocsPages(app: FastifyInstance, prefix: string): Promise<void> {
  const documentPath = `${prefix}/openapi.json`;
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    uiConfig: {
      docExpansion: "list",
      deepLinking: true,
      urls: [{ url: documentPath, name: `labthings-ts: ${documentPath}` }],
    },
    logo: { type: "image/svg+xml", content: LOGO_SVG, href: `${prefix}/`, target: "_self" },
    theme: {
      title: "labthings-ts: API docs",
      css: [{ filename: "labthings-ts.css", content: THEME_CSS }],
      favicon: [
        {
          filename: "favicon.svg",
          rel: "icon",
          type: "image/svg+xml",
          sizes: "any",
          content: FAVICON_SVG,
        },
      ],
    },
  });
  app.get("/openapi.json", { schema: { hide: true }, config: { public: true } }, async () =>
    app.swagger(),
  );
}
