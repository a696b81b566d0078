/**
 * `labthings-ts discover`: browse the local network for `_wot._tcp` services (DNS-SD over
 * mDNS, W3C WoT Discovery) for a few seconds, then list every server and its Things. Each
 * Thing's TD is fetched (briefly) for its title; `--json` prints one JSON object per server,
 * `{ url, things: [{ name, title, td }] }`, one per line, for scripts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type DiscoveredService, DnsSdBrowser } from "../discovery/dns-sd-browser.js";
import { ArgumentError, parseArguments } from "./cli-errors.js";

export const DISCOVER_USAGE = `Usage: labthings-ts discover [--timeout S] [--json]

Find Web of Things servers on the local network (DNS-SD, _wot._tcp) and list their Things.

Options:
  -t, --timeout S   how long to listen, in seconds (default 3)
      --json        one JSON object per server and line: {"url", "things": [{"name", "title", "td"}]}
  -h, --help        show this help`;

interface FoundThing {
  name: string;
  title: string;
  td: string;
}

export interface FoundServer {
  url: string;
  things: FoundThing[];
}

const TD_FETCH_MS = 2000;

/** Group services by server (the folder above each TD) and fetch each TD's title. */
export async function serversOf(services: readonly DiscoveredService[]): Promise<FoundServer[]> {
  const servers = new Map<string, FoundThing[]>();
  await Promise.all(
    services
      .filter((service) => service.type === "Thing")
      .map(async (service) => {
        const url = new URL("../", service.td.endsWith("/") ? service.td : `${service.td}/`).href;
        const name = decodeURIComponent(
          new URL(service.td).pathname.split("/").filter(Boolean).at(-1) ?? "",
        );
        const things = servers.get(url) ?? [];
        servers.set(url, things);
        things.push({
          name,
          title: (await titleOf(service.td)) ?? service.instance,
          td: service.td,
        });
      }),
  );
  return [...servers]
    .map(([url, things]) => ({ url, things: things.sort((a, b) => a.name.localeCompare(b.name)) }))
    .sort((a, b) => a.url.localeCompare(b.url));
}

async function titleOf(td: string): Promise<string | undefined> {
  try {
    const response = await fetch(td, {
      headers: { accept: "application/td+json, application/json" },
      signal: AbortSignal.timeout(TD_FETCH_MS),
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { title?: unknown };
    return typeof body.title === "string" ? body.title : undefined;
  } catch {
    return undefined;
  }
}

export async function discover(args: string[]): Promise<void> {
  const { values } = parseArguments("discover", {
    args,
    options: {
      timeout: { type: "string", short: "t" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(DISCOVER_USAGE);
    return;
  }
  const seconds = values.timeout === undefined ? 3 : Number(values.timeout);
  if (!(seconds > 0 && seconds <= 600)) {
    throw new ArgumentError(
      "discover",
      `--timeout '${values.timeout}' is not a number of seconds between 0 and 600`,
    );
  }
  const browser = new DnsSdBrowser();
  browser.start();
  await sleep(seconds * 1000);
  const services = browser.services;
  browser.stop();
  const servers = await serversOf(services);
  if (values.json) {
    for (const server of servers) console.log(JSON.stringify(server));
    return;
  }
  if (servers.length === 0) {
    console.log(`No Web of Things servers answered within ${seconds} s.`);
    return;
  }
  for (const server of servers) {
    console.log(server.url);
    const width = Math.max(...server.things.map((thing) => thing.name.length));
    for (const thing of server.things) console.log(`  ${thing.name.padEnd(width)}  ${thing.title}`);
  }
}
