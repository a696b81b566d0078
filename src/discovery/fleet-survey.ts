/**
 * The other servers a fleet page lists, and what each one holds right now. Browsers cannot
 * do mDNS, and a directory's token must stay on the server, so the server looks: at the
 * `_wot._tcp` services DNS-SD finds, at the TDs the configured directory lists, and at the
 * server URLs given in the config. Each server is then asked, from here, for its TD at
 * `/.well-known/wot` and each Thing's TD, so the page needs no CORS from anyone: it gets
 * one JSON document from its own origin, and shows camera thumbnails as plain images.
 *
 * Browsing starts on the first survey (a server nobody looks at sends no mDNS queries),
 * answers are kept for a couple of seconds, and every request is bounded in time.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { messageOf } from "../client/http-requester.js";
import type { ThingLogger } from "../model/logger.js";
import type { DirectoryOptions } from "./directory-registration.js";
import { DnsSdBrowser } from "./dns-sd-browser.js";

export type FleetSource = "dns-sd" | "directory" | "config";

export interface FleetThing {
  /** The Thing's name on its server (the last segment of its TD's URL). */
  name: string;
  title: string;
  /** Absolute URL of the TD. */
  td: string;
  /** `ok` when its TD answered; `failed` (with `detail`) otherwise. */
  status: "ok" | "failed";
  detail?: string;
  /** Absolute URLs of the camera snapshots its TD links (image/jpeg). */
  snapshots: string[];
  /** Its TD declares a bearer token: its data (and thumbnails) need one. */
  needsToken: boolean;
}

export interface FleetServer {
  /** The server's root URL, ending in `/`. */
  url: string;
  title: string;
  /** Where the page should send people: the server's own dashboard. */
  dashboard: string;
  sources: FleetSource[];
  online: boolean;
  detail?: string;
  things: FleetThing[];
  checkedAt: string;
}

export interface FleetSurveyOptions {
  /** Root URLs of this server (public and listening): never listed as another server. */
  self: readonly string[];
  browse: boolean;
  directory?: DirectoryOptions;
  servers: readonly string[];
  logger: ThingLogger;
}

const FETCH_TIMEOUT_MS = 2500;
const FIRST_ANSWERS_MS = 1000;
const CACHE_MS = 2000;
const MAX_SERVERS = 64;
const MAX_THINGS = 64;

interface Candidate {
  url: string;
  sources: Set<FleetSource>;
  tds: Set<string>;
}

export class FleetSurvey {
  #browser: DnsSdBrowser | undefined;
  #latest: { at: number; result: Promise<FleetServer[]> } | undefined;
  #stopped = false;

  constructor(private readonly options: FleetSurveyOptions) {}

  /** Every other server known now, each freshly probed (cached for a moment). */
  survey(): Promise<FleetServer[]> {
    if (this.#stopped) return Promise.resolve([]);
    let justStarted = false;
    if (this.options.browse && !this.#browser) {
      this.#browser = new DnsSdBrowser(this.options.logger);
      this.#browser.start();
      justStarted = true;
    }
    const now = Date.now();
    if (!this.#latest || now - this.#latest.at > CACHE_MS) {
      // The first answers to a new browser's query come within a second: wait for them.
      const survey = justStarted
        ? sleep(FIRST_ANSWERS_MS).then(() => this.#survey())
        : this.#survey();
      this.#latest = { at: now, result: survey };
    }
    return this.#latest.result;
  }

  stop(): void {
    this.#stopped = true;
    this.#browser?.stop();
  }

  async #survey(): Promise<FleetServer[]> {
    const candidates = new Map<string, Candidate>();
    const self = new Set(this.options.self.map(rootOf));
    const add = (url: string, source: FleetSource, td?: string) => {
      let root: string;
      try {
        root = rootOf(url);
      } catch {
        return;
      }
      if (self.has(root) || (!candidates.has(root) && candidates.size >= MAX_SERVERS)) return;
      const candidate = candidates.get(root) ?? { url: root, sources: new Set(), tds: new Set() };
      candidate.sources.add(source);
      if (td) candidate.tds.add(td);
      candidates.set(root, candidate);
    };
    for (const server of this.options.servers) add(server, "config");
    for (const service of this.#browser?.services ?? []) {
      if (service.type === "Thing") add(parentOf(service.td), "dns-sd", service.td);
    }
    for (const td of await this.#directoryListing()) add(parentOf(td), "directory", td);
    return Promise.all([...candidates.values()].map((candidate) => this.#probe(candidate)));
  }

  /** The URL of each TD the directory lists (its `base`); empty when it cannot be read. */
  async #directoryListing(): Promise<string[]> {
    const directory = this.options.directory;
    if (!directory) return [];
    const base = directory.url.endsWith("/") ? directory.url : `${directory.url}/`;
    const url = new URL("things", base);
    try {
      const response = await fetch(url, {
        headers: {
          accept: "application/json, application/ld+json",
          ...(directory.token ? { authorization: `Bearer ${directory.token}` } : {}),
        },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        redirect: "manual",
      });
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      const listing = (await response.json()) as unknown;
      const tds = Array.isArray(listing) ? listing : [];
      return tds.flatMap((td) =>
        typeof td === "object" && td !== null && typeof (td as { base?: unknown }).base === "string"
          ? [(td as { base: string }).base]
          : [],
      );
    } catch (error) {
      this.options.logger.debug(
        { directory: url.href, err: messageOf(error) },
        "fleet: directory listing failed",
      );
      return [];
    }
  }

  async #probe(candidate: Candidate): Promise<FleetServer> {
    const server: FleetServer = {
      url: candidate.url,
      title: new URL(candidate.url).host,
      dashboard: candidate.url,
      sources: [...candidate.sources].sort(),
      online: false,
      things: [],
      checkedAt: new Date().toISOString(),
    };
    const tds = new Set(candidate.tds);
    const wellKnown = new URL("/.well-known/wot", candidate.url).href;
    try {
      const description = await fetchJson(wellKnown);
      server.online = true;
      if (typeof description.title === "string") server.title = description.title;
      const base = typeof description.base === "string" ? description.base : candidate.url;
      for (const link of asLinks(description.links)) {
        const href = new URL(link.href, base).href;
        // Only its own Things: a listing naming other origins (an internal address, another
        // machine) must not make this server fetch them for whoever opens the fleet page.
        if (link.rel === "item" && sameOrigin(href, candidate.url)) tds.add(href);
        // The card's "Open its dashboard" link says it is this server's: keep it there.
        if (
          link.rel === "alternate" &&
          link.type === "text/html" &&
          sameOrigin(href, candidate.url)
        )
          server.dashboard = href;
      }
    } catch (error) {
      server.detail = `${wellKnown}: ${messageOf(error)}`;
    }
    const things = await Promise.all([...tds].slice(0, MAX_THINGS).map((td) => probeThing(td)));
    if (things.some((thing) => thing.status === "ok")) server.online = true;
    server.things = things.sort((a, b) => a.name.localeCompare(b.name));
    return server;
  }
}

async function probeThing(td: string): Promise<FleetThing> {
  const name = decodeURIComponent(new URL(td).pathname.split("/").filter(Boolean).at(-1) ?? td);
  try {
    const description = await fetchJson(td);
    const base = typeof description.base === "string" ? description.base : td;
    const security = Array.isArray(description.security)
      ? description.security
      : [description.security];
    const definitions = (description.securityDefinitions ?? {}) as Record<
      string,
      { scheme?: string }
    >;
    return {
      name,
      title: typeof description.title === "string" ? description.title : name,
      td,
      status: "ok",
      snapshots: asLinks(description.links)
        .filter((link) => link.type === "image/jpeg")
        .map((link) => new URL(link.href, base).href),
      needsToken: security.some((key) => definitions[String(key)]?.scheme === "bearer"),
    };
  } catch (error) {
    return {
      name,
      title: name,
      td,
      status: "failed",
      detail: messageOf(error),
      snapshots: [],
      needsToken: false,
    };
  }
}

/** GET a JSON document, bounded in time; a Problem Details answer becomes its detail. */
async function fetchJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    headers: { accept: "application/td+json, application/json" },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    // A redirect could lead anywhere (see the `item` links above): not followed.
    redirect: "manual",
  });
  if (response.status >= 300 && response.status < 400) {
    throw new Error(`answered ${response.status} (a redirect, not followed)`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`answered ${response.status} with no JSON`);
  }
  if (!response.ok) {
    const detail = (body as { detail?: unknown }).detail;
    throw new Error(`${response.status}${typeof detail === "string" ? `: ${detail}` : ""}`);
  }
  if (typeof body !== "object" || body === null) throw new Error("answered JSON that is no object");
  return body as Record<string, unknown>;
}

function asLinks(value: unknown): { href: string; rel?: string; type?: string }[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (link): link is { href: string; rel?: string; type?: string } =>
      typeof link === "object" && link !== null && typeof link.href === "string",
  );
}

function sameOrigin(url: string, other: string): boolean {
  return new URL(url).origin === new URL(other).origin;
}

/** `http://h:5000/camera/` → `http://h:5000/`: the folder above a Thing's TD. */
function parentOf(td: string): string {
  return new URL("../", td.endsWith("/") ? td : `${td}/`).href;
}

/** A server URL in one spelling: origin and path, ending in `/`. */
function rootOf(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname.endsWith("/") ? parsed.pathname : `${parsed.pathname}/`;
  return `${parsed.origin}${path}`;
}
