import type { FastifyInstance } from "fastify";
import type { RouteContext } from "../route-context.js";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `GET /`: a plain page for a person with a browser: the Things, their TDs, the API docs. */
export function registerIndexPage(app: FastifyInstance, context: RouteContext): void {
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    const items = [...context.registry.values()]
      .map((exposed) => {
        const href = `${context.prefix}/${exposed.name}/`;
        const properties = [...exposed.properties.keys()].map(escapeHtml).join(", ") || "none";
        return `<li><a href="${href}">${escapeHtml(exposed.name)}</a> — ${escapeHtml(exposed.title)}<br><small>properties: ${properties}</small></li>`;
      })
      .join("\n");
    reply.type("text/html; charset=utf-8");
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>labthings-ts</title><style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}li{margin:.5rem 0}</style></head>
<body><h1>labthings-ts</h1><p>Things served here (each link is its W3C Thing Description):</p><ul>${items}</ul>
<p><a href="${context.prefix}/docs">Interactive API documentation</a> · <a href="${context.prefix}/openapi.json">OpenAPI</a> · <a href="${context.prefix}/things/">/things/</a></p></body></html>`;
  });
}
