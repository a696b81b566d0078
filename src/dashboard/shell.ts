/**
 * The dashboard's HTML shell, served by the server at `GET /`. It holds no data (so it
 * stays public when authentication is on): the modules it loads fetch the Thing
 * Descriptions and build everything else in the browser. Node-safe: only strings.
 */

/** Where the server serves the dashboard's stylesheet and ES modules, below its prefix. */
export const DASHBOARD_ASSET_PREFIX = "/_dashboard";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The page for an API prefix (`""` or e.g. `/microscope`).
 *
 * @example
 * ```ts
 * reply.type("text/html").send(dashboardPage({ prefix: "", built: true }));
 * ```
 */
export function dashboardPage(options: { prefix: string; built: boolean }): string {
  const root = escapeHtml(options.prefix);
  const assets = `${root}${DASHBOARD_ASSET_PREFIX}`;
  const notBuilt = options.built
    ? ""
    : `<p class="problem" role="alert">The dashboard's scripts are not built: run <code>npm run build</code> and reload.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>labthings-ts</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assets}/dashboard.css">
<script type="module" src="${assets}/dashboard/main.js"></script>
</head>
<body>
<a class="skip-link" href="#things">Skip to the Things</a>
<header class="top">
  <h1>labthings-ts</h1>
  <nav aria-label="Things" id="thing-nav"></nav>
  <p class="top-links"><a href="${root}/_fleet/">Fleet</a> <a href="${root}/docs">API docs</a> <a href="${root}/things/">Thing Descriptions</a></p>
</header>
<section id="token-prompt" class="token-prompt" hidden aria-labelledby="token-title"></section>
<main id="main">
  <p id="page-status" class="page-status" role="status">Loading Thing Descriptions…</p>
  ${notBuilt}
  <noscript><p class="problem">The dashboard needs JavaScript. The <a href="${root}/docs">API docs</a> and <a href="${root}/things/">Thing Descriptions</a> work without it.</p></noscript>
  <div id="microscope"></div>
  <div id="things"></div>
</main>
</body>
</html>
`;
}
