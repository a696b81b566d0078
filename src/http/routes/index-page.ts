import type { FastifyInstance } from "fastify";
import type { ExposedThing } from "../../runtime/exposed-thing.js";
import type { RouteContext } from "../route-context.js";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function thingSection(exposed: ExposedThing, prefix: string): string {
  const base = `${prefix}/${exposed.name}`;
  // The first stream is shown live; the others are links (each live view costs encoding).
  const streams = [...exposed.streams.values()]
    .map(({ name, declaration }, index) => {
      const title = escapeHtml(declaration.title ?? name);
      const links = `${title} · <a href="${base}/${name}">stream</a> · <a href="${base}/${name}/snapshot">snapshot</a>`;
      if (index > 0) return `<p>${links}</p>`;
      return `<figure><img src="${base}/${name}?advance_headers=1" alt="${title} of ${escapeHtml(exposed.name)}">
<figcaption>${links}</figcaption></figure>`;
    })
    .join("\n");
  const actions = [...exposed.actions.values()]
    .map((a) => `<a href="${base}/${a.name}">${escapeHtml(a.title ?? a.name)}</a>`)
    .join(", ");
  const properties = [...exposed.properties.values()]
    .map((p) => `<a href="${base}/${p.name}">${escapeHtml(p.declaration.title ?? p.name)}</a>`)
    .join(", ");
  return `<section><h2><a href="${base}/">${escapeHtml(exposed.name)}</a> <small>${escapeHtml(exposed.title)}</small></h2>
${exposed.description ? `<p>${escapeHtml(exposed.description)}</p>` : ""}${streams}
<p>Properties: ${properties || "none"} · <a href="${base}/properties">all values</a></p>
${actions ? `<p>Actions (POST to run; GET lists invocations): ${actions}</p>` : ""}</section>`;
}

/** `GET /`: a plain page for a person with a browser: live streams, Things, TDs, API docs. */
export function registerIndexPage(app: FastifyInstance, context: RouteContext): void {
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    const sections = [...context.registry.values()]
      .map((e) => thingSection(e, context.prefix))
      .join("\n");
    reply.type("text/html; charset=utf-8");
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>labthings-ts</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
img{max-width:100%;background:#222;border-radius:4px}figure{margin:1rem 0}small{color:#666;font-weight:normal}</style></head>
<body><h1>labthings-ts</h1>
<p>Each Thing's name links to its W3C Thing Description. <a href="${context.prefix}/docs">Interactive API documentation</a> · <a href="${context.prefix}/openapi.json">OpenAPI</a> · <a href="${context.prefix}/things/">/things/</a></p>
${sections}</body></html>`;
  });
}
