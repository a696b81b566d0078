/**
 * Browsing for `_wot._tcp` services (W3C WoT Discovery, DNS-SD introduction): asks the
 * local network, keeps the answers for their TTL and drops an instance when its goodbye
 * (TTL 0) arrives. Each complete instance (PTR, SRV and TXT known) becomes the absolute
 * URL of a TD: `scheme://address:port` + the TXT `td` path.
 */
import makeMdns from "multicast-dns";
import type { ThingLogger } from "../model/logger.js";
import { silentLogger } from "../model/logger.js";
import { WOT_SERVICE } from "./dns-sd-advertiser.js";

export interface DiscoveredService {
  /** The instance name without the service suffix. */
  instance: string;
  /** Absolute URL of the TD. */
  td: string;
  /** `Thing` or `Directory` (the TXT `type`, default Thing). */
  type: string;
  host: string;
  port: number;
  addresses: string[];
}

interface Entry {
  expires: number;
}
interface SrvEntry extends Entry {
  port: number;
  target: string;
}
interface TxtEntry extends Entry {
  values: Record<string, string>;
}

/**
 * Bounds on what anyone on the network can make us keep: answers arrive unasked, and a
 * flood of unique names (or a TTL of years) would otherwise grow these maps for as long
 * as the server browses. Names already known keep being refreshed; new ones past the cap
 * are ignored until expired ones are swept. 1024 Things is far beyond a facility's LAN.
 */
const MAX_INSTANCES = 1024;
const MAX_ADDRESSES_PER_HOST = 16;
/** RFC 6762 §10 suggests 75 minutes for records other than host names. */
const MAX_TTL_S = 4500;
const SWEEP_EVERY_MS = 1000;

/** When to ask again after starting (ms), then every REQUERY_MS while browsing. */
const QUERY_DELAYS_MS = [0, 250, 1000];
const REQUERY_MS = 15_000;

export class DnsSdBrowser {
  #mdns: makeMdns.MulticastDNS | undefined;
  readonly #instances = new Map<string, Entry>();
  readonly #srv = new Map<string, SrvEntry>();
  readonly #txt = new Map<string, TxtEntry>();
  readonly #addresses = new Map<string, Map<string, Entry>>();
  /** Where each instance's answer came from: the address when no A record came with it. */
  readonly #senders = new Map<string, string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #sweptAt = 0;

  constructor(private readonly logger: ThingLogger = silentLogger) {}

  start(): void {
    if (this.#mdns) return;
    try {
      this.#mdns = makeMdns();
    } catch (error) {
      this.logger.error({ err: error }, "DNS-SD: cannot open the multicast DNS socket to browse");
      return;
    }
    this.#mdns.on("error", (error: Error) =>
      this.logger.error({ err: error }, "DNS-SD browsing failed"),
    );
    this.#mdns.on("warning", (error: Error) => this.logger.debug({ err: error }, "DNS-SD warning"));
    this.#mdns.on("response", (response, sender) => this.#take(response, sender.address));
    for (const delay of QUERY_DELAYS_MS) this.#later(delay, () => this.#query());
    const every = setInterval(() => this.#query(), REQUERY_MS);
    every.unref();
    this.#timers.push(every);
  }

  stop(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#mdns?.destroy();
    this.#mdns = undefined;
  }

  /** Every instance currently known in full, in order of name. */
  get services(): DiscoveredService[] {
    const now = Date.now();
    const found: DiscoveredService[] = [];
    for (const [name, entry] of this.#instances) {
      const srv = this.#srv.get(name);
      const txt = this.#txt.get(name);
      if (entry.expires < now || !srv || srv.expires < now || !txt) continue;
      const records = [...(this.#addresses.get(srv.target.toLowerCase()) ?? new Map())]
        .filter(([, address]) => address.expires >= now)
        .map(([address]) => address);
      const sender = this.#senders.get(name);
      const addresses = records.length > 0 ? records : sender ? [sender] : [];
      if (addresses.length === 0) continue;
      const scheme = txt.values.scheme || "http";
      const path = txt.values.td || "/";
      const address = addresses[0]!;
      // Whatever anyone on the network announces: one that is no http(s) URL is left out
      // (a throw here would fail every fleet listing and `discover` while it is announced).
      if (scheme !== "http" && scheme !== "https") continue;
      const origin = `${scheme}://${address.includes(":") ? `[${address}]` : address}:${srv.port}`;
      let td: string;
      try {
        td = new URL(path.startsWith("/") ? path : `/${path}`, origin).href;
      } catch {
        continue;
      }
      found.push({
        instance: name.slice(0, -(WOT_SERVICE.length + 1)),
        td,
        type: txt.values.type || "Thing",
        host: srv.target,
        port: srv.port,
        addresses,
      });
    }
    return found.sort((a, b) => a.td.localeCompare(b.td));
  }

  #later(delay: number, run: () => void): void {
    const timer = setTimeout(run, delay);
    timer.unref();
    this.#timers.push(timer);
  }

  #query(): void {
    const questions: { name: string; type: "PTR" | "SRV" | "TXT" }[] = [
      { name: WOT_SERVICE, type: "PTR" },
    ];
    // Instances whose details did not come with the PTR answer: ask for them.
    for (const name of this.#instances.keys()) {
      if (!this.#srv.has(name)) questions.push({ name, type: "SRV" });
      if (!this.#txt.has(name)) questions.push({ name, type: "TXT" });
    }
    this.#mdns?.query({ questions }, (error: Error | null) => {
      if (error) this.logger.debug({ err: error }, "DNS-SD query not sent");
    });
  }

  #take(response: makeMdns.ResponsePacket, sender: string): void {
    const now = Date.now();
    this.#sweep(now);
    for (const record of [...response.answers, ...(response.additionals ?? [])]) {
      const ttl = "ttl" in record && typeof record.ttl === "number" ? record.ttl : 120;
      const expires = now + Math.min(ttl, MAX_TTL_S) * 1000;
      const name = record.name;
      // Only what belongs to a `_wot._tcp` instance: other services' records are not ours.
      const ofInstance = name.toLowerCase().endsWith(`.${WOT_SERVICE}`);
      switch (record.type) {
        case "PTR": {
          if (name.toLowerCase() !== WOT_SERVICE) break;
          const instance = String(record.data);
          if (ttl === 0) this.#forget(instance);
          else if (this.#instances.has(instance) || this.#instances.size < MAX_INSTANCES) {
            this.#instances.set(instance, { expires });
            this.#senders.set(instance, sender);
          }
          break;
        }
        case "SRV":
          if (!ofInstance) break;
          if (ttl === 0) this.#forget(name);
          else if (this.#srv.has(name) || this.#srv.size < MAX_INSTANCES) {
            this.#srv.set(name, { expires, port: record.data.port, target: record.data.target });
          }
          break;
        case "TXT":
          if (!ofInstance || ttl === 0) break;
          if (this.#txt.has(name) || this.#txt.size < MAX_INSTANCES) {
            this.#txt.set(name, { expires, values: parseTxt(record.data) });
          }
          break;
        case "A": {
          const host = name.toLowerCase();
          const known = this.#addresses.get(host);
          if (ttl === 0) known?.delete(String(record.data));
          else if (known) {
            if (known.has(String(record.data)) || known.size < MAX_ADDRESSES_PER_HOST) {
              known.set(String(record.data), { expires });
            }
          } else if (this.#addresses.size < MAX_INSTANCES) {
            this.#addresses.set(host, new Map([[String(record.data), { expires }]]));
          }
          break;
        }
      }
    }
  }

  /** Drop what has expired (at most once a second), so the caps count live records only. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    for (const [name, entry] of this.#instances) if (entry.expires < now) this.#forget(name);
    for (const map of [this.#srv, this.#txt]) {
      for (const [name, entry] of map) if (entry.expires < now) map.delete(name);
    }
    for (const [host, known] of this.#addresses) {
      for (const [address, entry] of known) if (entry.expires < now) known.delete(address);
      if (known.size === 0) this.#addresses.delete(host);
    }
  }

  #forget(instance: string): void {
    this.#instances.delete(instance);
    this.#srv.delete(instance);
    this.#txt.delete(instance);
    this.#senders.delete(instance);
  }
}

/** TXT strings `key=value` (RFC 6763 §6); a key without `=` is present with no value. */
function parseTxt(data: unknown): Record<string, string> {
  const strings = (Array.isArray(data) ? data : [data]).map((item) =>
    Buffer.isBuffer(item) ? item.toString("utf8") : String(item),
  );
  const values: Record<string, string> = {};
  for (const entry of strings) {
    const at = entry.indexOf("=");
    const key = (at === -1 ? entry : entry.slice(0, at)).toLowerCase();
    if (key !== "" && !(key in values)) values[key] = at === -1 ? "" : entry.slice(at + 1);
  }
  return values;
}
