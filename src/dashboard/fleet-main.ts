/**
 * The fleet page's module (`/_fleet/`): reads `<root>/_fleet/servers` from its own server
 * every few seconds and shows a card per server (this one first) with its Things, whether
 * it answered, a thumbnail per camera (its snapshot, refreshed while the page is visible)
 * and a link to that server's own dashboard. It sends a token only to its own server (the
 * one this tab was given in the dashboard): another server's Thing whose TD wants one is
 * shown without a thumbnail, with a link to its server.
 */
// Types only (erased in the compiled module): the page reads what the survey makes.
import type { FleetServer, FleetThing } from "../discovery/fleet-survey.js";
import { AccessTokens } from "./access-tokens.js";
import { h } from "./dom.js";

/** The server's API root: this module is served at `<root>/_dashboard/dashboard/fleet-main.js`. */
const API_ROOT = new URL("../../", import.meta.url);
const POLL_MS = 5000;
const tokens = new AccessTokens(sessionStorage);
/** Requests to this page's own server only, with the token this tab gave the dashboard. */
const own = tokens.forOrigin(API_ROOT.origin);
const THUMBNAIL_MS = 2000;

const SOURCE_LABELS: Record<string, string> = {
  "dns-sd": "found by DNS-SD",
  directory: "in the TD directory",
  config: "configured",
};

/** Thumbnails by snapshot URL, reused across refreshes so they do not flicker. */
const thumbnails = new Map<string, HTMLImageElement>();

function thumbnail(url: string, alt: string): HTMLImageElement {
  let img = thumbnails.get(url);
  if (!img) {
    img = h("img", { class: "fleet-thumb", alt, src: url, decoding: "async" });
    thumbnails.set(url, img);
  }
  return img;
}

function refreshThumbnails(): void {
  if (document.visibilityState !== "visible") return;
  for (const [url, img] of thumbnails) {
    if (!img.isConnected) {
      thumbnails.delete(url);
      continue;
    }
    const next = new URL(url);
    next.searchParams.set("t", String(Date.now()));
    img.src = next.href;
  }
}

function thingRow(thing: FleetThing, isOwn: boolean): HTMLElement {
  const row = h(
    "li",
    { class: `fleet-thing ${thing.status}`, "data-thing": thing.name },
    h("span", { class: "fleet-title" }, thing.title),
    h("span", { class: "fleet-name" }, thing.name),
    thing.status === "failed"
      ? h("span", { class: "fleet-note" }, `unavailable: ${thing.detail ?? ""}`)
      : null,
  );
  const hasToken = isOwn && tokens.get(own.origin) !== undefined;
  if (thing.status === "ok" && thing.needsToken && thing.snapshots.length > 0 && !hasToken) {
    row.append(
      h("p", { class: "fleet-note" }, "Needs a token: open its dashboard to see the camera."),
    );
  } else if (thing.status === "ok") {
    for (const snapshot of thing.snapshots)
      row.append(
        thumbnail(
          isOwn ? tokens.withAccessToken(snapshot) : snapshot,
          `${thing.title}: latest frame`,
        ),
      );
  }
  return row;
}

function card(server: FleetServer, isSelf: boolean): HTMLElement {
  const state = server.online
    ? h("span", { class: "fleet-online" }, "online")
    : h("span", { class: "fleet-offline" }, "not answering");
  const checked = new Date(server.checkedAt).toLocaleTimeString();
  return h(
    "article",
    { class: "fleet-card", "data-server": server.url, "aria-label": server.title },
    h("h2", {}, isSelf ? "This server" : server.title),
    h("p", { class: "fleet-url" }, server.url),
    h(
      "div",
      { class: "fleet-meta" },
      state,
      ...server.sources.map((source) =>
        h("span", { class: "fleet-badge" }, SOURCE_LABELS[source] ?? source),
      ),
      h("span", { class: "fleet-note" }, `checked ${checked}`),
    ),
    server.detail && !server.online ? h("p", { class: "fleet-note" }, server.detail) : null,
    server.things.length === 0
      ? h("p", { class: "fleet-note" }, "No Things seen.")
      : h(
          "ul",
          { class: "fleet-things" },
          ...server.things.map((thing) => thingRow(thing, isSelf)),
        ),
    h(
      "a",
      {
        class: "fleet-open",
        href: server.dashboard,
        rel: isSelf ? undefined : "noopener noreferrer",
      },
      isSelf ? "Open the dashboard" : `Open ${server.title}'s dashboard`,
    ),
  );
}

async function update(status: HTMLElement, area: HTMLElement): Promise<void> {
  try {
    const response = await own.fetch(new URL("_fleet/servers", API_ROOT), {
      headers: { accept: "application/json" },
    });
    if (response.status === 401) {
      status.replaceChildren(
        "This server needs a token to list its fleet: ",
        h("a", { href: API_ROOT.href }, "open its dashboard"),
        ", give the token there, then come back.",
      );
      return;
    }
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const { self, servers } = (await response.json()) as {
      self: FleetServer;
      servers: FleetServer[];
    };
    area.replaceChildren(card(self, true), ...servers.map((server) => card(server, false)));
    const others = servers.length;
    status.textContent =
      others === 0
        ? "No other servers found yet (DNS-SD, the TD directory and the config are asked)."
        : `${others} other server${others === 1 ? "" : "s"}.`;
  } catch (error) {
    status.textContent = `Could not read the fleet: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function start(): void {
  // A link made by the dashboard may carry the token (`#token=…`), as the dashboard's does.
  tokens.adoptFromLocation(location, history);
  const status = document.getElementById("fleet-status")!;
  const area = document.getElementById("fleet")!;
  void update(status, area);
  setInterval(() => void update(status, area), POLL_MS);
  setInterval(refreshThumbnails, THUMBNAIL_MS);
}

start();
