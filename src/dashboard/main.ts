/**
 * The dashboard's entry module, loaded by the page at `GET /`. It finds the Thing
 * Descriptions — `?td=<url>` (repeatable) for any server's Things, else this server's
 * `/things/` — connects a ThingClient to each, and builds the page: the microscope view
 * when the Things make one, then a panel per Thing.
 */
import { ThingClient } from "../client/thing-client.js";
import { AccessTokens, type OriginAccess } from "./access-tokens.js";
import { POLL_INTERVAL_MS } from "./action-view.js";
import { errorText, h } from "./dom.js";
import { type Refusal, vetThingDescription } from "./form-policy.js";
import { findMicroscope, MicroscopeView } from "./microscope-view.js";
import { watchSettings } from "./settings-alert.js";
import { ThingPanel } from "./thing-panel.js";
import { TokenPrompt } from "./token-prompt.js";

/** The server's API root: this module is served at `<root>/_dashboard/dashboard/main.js`. */
const API_ROOT = new URL("../../", import.meta.url);

interface ThingSource {
  /** Short name for ids and the navigation. */
  id: string;
  /** Where the Thing Description is. */
  url: string;
}

const element = (id: string) => document.getElementById(id)!;

/** The Things to show: those named by `?td=`, else every Thing of this server. */
async function thingSources(tokens: AccessTokens): Promise<ThingSource[]> {
  const given = new URLSearchParams(location.search).getAll("td");
  if (given.length > 0) {
    const used = new Set<string>();
    return given.map((href) => {
      const url = new URL(href, location.href).href;
      const segments = new URL(url).pathname.split("/").filter(Boolean);
      let id = (segments.at(-1) ?? "thing").replace(/[^A-Za-z0-9_-]/g, "_");
      while (used.has(id)) id = `${id}_`;
      used.add(id);
      return { id, url };
    });
  }
  const index = new URL("things/", API_ROOT).href;
  const response = await tokens
    .forOrigin(location.origin)
    .fetch(index, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${index} answered ${response.status} ${response.statusText}`);
  const things = (await response.json()) as Record<string, string>;
  return Object.entries(things).map(([id, url]) => ({ id, url }));
}

async function start(): Promise<void> {
  const tokens = new AccessTokens(sessionStorage);
  tokens.adoptFromLocation(location, history);
  const prompt = new TokenPrompt(element("token-prompt"), tokens);
  tokens.onUnauthorised((origin) => prompt.ask(origin));
  const status = element("page-status");
  const thingsArea = element("things");

  const sources = await thingSources(tokens);
  if (sources.length === 0) {
    status.textContent = "This server has no Things.";
    return;
  }
  const connected = await Promise.allSettled(sources.map((source) => connectThing(source, tokens)));
  // This server says what the token may do; another server's Things show every control
  // (their server answers 403 to what the token may not do).
  const ownRole = sources.some((source) => isOwnThing(source.url))
    ? await roleOnThisServer(tokens)
    : undefined;

  const panels: ThingPanel[] = [];
  let liveStreams = 0;
  let microscopeStream: string | undefined;
  const startLive = () => liveStreams++ === 0;
  connected.forEach((result, index) => {
    const source = sources[index]!;
    if (result.status === "rejected") {
      thingsArea.append(
        h(
          "section",
          { class: "card thing", "data-thing": source.id },
          h("h2", {}, source.id),
          h(
            "p",
            { class: "problem" },
            `Cannot load the Thing Description at ${source.url}: ${errorText(result.reason)}`,
          ),
        ),
      );
      return;
    }
    const { client, access, refused } = result.value;
    panels.push(
      new ThingPanel(client, {
        id: source.id,
        access,
        refused,
        role: isOwnThing(source.url) ? ownRole : undefined,
        startLive,
        shownElsewhere: (link) => link.url === microscopeStream,
      }),
    );
  });

  const parts = findMicroscope(panels);
  const navigation = element("thing-nav");
  if (parts) {
    microscopeStream = parts.stream.url;
    liveStreams = 1;
    element("microscope").append(
      new MicroscopeView(parts, parts.camera.access, { operate: parts.stage.operate }).element,
    );
    navigation.append(h("a", { href: "#microscope-view" }, "Microscope"));
    document.title = `Microscope · labthings-ts`;
  }
  const following = new AbortController();
  addEventListener("pagehide", () => following.abort());
  if (sources.some((source) => isOwnThing(source.url))) {
    const settingsUrl = new URL("settings/", API_ROOT).href;
    watchSettings(
      element("main"),
      settingsUrl,
      tokens.forOrigin(location.origin),
      following.signal,
    );
  }
  for (const panel of panels) {
    thingsArea.append(panel.element);
    navigation.append(h("a", { href: `#${panel.element.id}` }, panel.client.title));
    panel.start(following.signal);
  }
  status.textContent = "";
}

/**
 * A client for one Thing that can only reach the origin its TD came from, with that
 * origin's token, and follows only the forms the page may use (see form-policy.ts).
 */
async function connectThing(
  source: ThingSource,
  tokens: AccessTokens,
): Promise<{ client: ThingClient; access: OriginAccess; refused: Refusal[] }> {
  const target = new URL(source.url);
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new Error(`refused: ${source.url} is not an http(s) URL`);
  }
  const access = tokens.forOrigin(target.origin);
  const options = { fetch: access.fetch, pollIntervalMs: POLL_INTERVAL_MS };
  const loaded = await ThingClient.connect(source.url, options);
  const { description, refused } = vetThingDescription(loaded.description, loaded.url);
  return { client: ThingClient.fromDescription(description, loaded.url, options), access, refused };
}

/** A Thing of the server that served this page (its TD is under the page's API root). */
function isOwnThing(url: string): boolean {
  return url.startsWith(API_ROOT.href);
}

/** The role of this tab's token on this server (`GET /access/`); undefined when it cannot say. */
async function roleOnThisServer(tokens: AccessTokens): Promise<string | undefined> {
  try {
    const response = await tokens
      .forOrigin(location.origin)
      .fetch(new URL("access/", API_ROOT).href, { headers: { accept: "application/json" } });
    if (!response.ok) return undefined;
    const { role } = (await response.json()) as { role?: unknown };
    return typeof role === "string" ? role : undefined;
  } catch {
    return undefined;
  }
}

start().catch((error: unknown) => {
  const status = element("page-status");
  status.classList.add("problem");
  status.textContent = `The dashboard could not start: ${errorText(error)}`;
});
