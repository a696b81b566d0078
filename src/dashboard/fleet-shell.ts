/**
 * The fleet page's HTML shell (`GET /_fleet/`) and its stylesheet: like the dashboard's,
 * no data, only where the module (`fleet-main.js`) and styles are. Node-safe: only strings.
 */
import { DASHBOARD_ASSET_PREFIX } from "./shell.js";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function fleetPage(options: { prefix: string }): string {
  const root = escapeHtml(options.prefix);
  const assets = `${root}${DASHBOARD_ASSET_PREFIX}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleet — labthings-ts</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assets}/dashboard.css">
<link rel="stylesheet" href="${assets}/fleet.css">
<script type="module" src="${assets}/dashboard/fleet-main.js"></script>
</head>
<body>
<header class="top">
  <h1>Fleet</h1>
  <p class="top-links"><a href="${root}/">This server's dashboard</a> <a href="${root}/_fleet/servers">JSON</a></p>
</header>
<main id="main">
  <p id="fleet-status" class="page-status" role="status">Looking for servers…</p>
  <noscript><p class="problem">The fleet page needs JavaScript; <a href="${root}/_fleet/servers">the listing</a> works without it.</p></noscript>
  <div id="fleet" class="fleet" aria-live="polite"></div>
</main>
</body>
</html>
`;
}

export const FLEET_CSS = `
.fleet { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr)); gap: 1rem; }
.fleet-card { background: var(--panel); border: 1px solid var(--line); border-radius: .5rem; padding: .8rem 1rem; }
.fleet-card h2 { font-size: 1.05rem; margin: 0 0 .2rem; }
.fleet-card .fleet-url { color: var(--muted); font-size: .85rem; word-break: break-all; margin: 0; }
.fleet-meta { display: flex; flex-wrap: wrap; gap: .35rem; align-items: center; margin: .5rem 0; font-size: .85rem; }
.fleet-badge { border: 1px solid var(--line); border-radius: 1rem; padding: 0 .5rem; color: var(--muted); }
.fleet-online { color: var(--ok); font-weight: 600; }
.fleet-offline { color: var(--danger); font-weight: 600; }
.fleet-things { list-style: none; padding: 0; margin: .4rem 0; display: grid; gap: .5rem; }
.fleet-thing { display: flex; flex-wrap: wrap; gap: .3rem .6rem; align-items: baseline; }
.fleet-thing .fleet-name { color: var(--muted); font-size: .85rem; }
.fleet-thing.failed .fleet-title { color: var(--danger); }
.fleet-thumb { display: block; width: 100%; max-width: 18rem; aspect-ratio: 4 / 3; object-fit: cover; background: #222; border-radius: .3rem; }
.fleet-note { color: var(--muted); font-size: .85rem; margin: 0; }
.fleet-open { display: inline-block; margin-top: .3rem; font-weight: 600; }
`;
