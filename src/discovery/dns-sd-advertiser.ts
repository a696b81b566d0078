/**
 * DNS-SD over multicast DNS (RFC 6763, RFC 6762) as W3C WoT Discovery describes it: one
 * `_wot._tcp` service instance per Thing, whose TXT record holds `td` (the absolute path of
 * its TD), `type` (`Thing`) and `scheme` (`http`).
 *
 * Built on `multicast-dns` (packets and sockets) rather than a whole Bonjour stack, so the
 * address records are exactly the addresses the server listens on (bonjour-service announces
 * every non-loopback interface, whatever the bind), queries are answered on the bound
 * interface only, and the goodbye (every record again with TTL 0) is ours to time.
 * Instance names carry the host and port, so two servers never claim the same name; name
 * probing (RFC 6762 §8.1) is left out for that reason.
 */
import makeMdns from "multicast-dns";
import type { ThingLogger } from "../model/logger.js";
import { settleWithin } from "../runtime/settle.js";

export const WOT_SERVICE = "_wot._tcp.local";
const SERVICE_ENUMERATION = "_services._dns-sd._udp.local";
/** RFC 6762 §10: 120 s for records naming a host, which we use for all. */
const RECORD_TTL_S = 120;
/** Unsolicited announcements at start (RFC 6762 §8.3: at least two, one second apart). */
const ANNOUNCE_DELAYS_MS = [0, 1000, 3000];

export interface WotServiceInstance {
  /** The instance label, e.g. `Simulated camera (camera) on bench-pi:5000`. */
  name: string;
  port: number;
  /** TXT members: `td`, `type`, `scheme`. */
  txt: Record<string, string>;
}

type Answer = makeMdns.ResponseOutgoingPacket["answers"][number];

export interface DnsSdAdvertiserOptions {
  /** Host name the SRV records point at (`<label>.local`). */
  hostName: string;
  /** IPv4 addresses of that host: its A records. */
  addresses: readonly string[];
  /** Multicast on this interface's address only (a specific bind); default all interfaces. */
  interfaceAddress?: string;
  logger: ThingLogger;
}

/** An instance label of at most 63 bytes: the title is shortened when it has to be. */
export function instanceName(title: string, thing: string, host: string, port: number): string {
  const tail = ` (${thing}) on ${host}:${port}`;
  // A dot would split the label in two on the wire.
  let head = title.replace(/\./g, "-");
  while (head.length > 0 && Buffer.byteLength(head + tail) > 63) head = head.slice(0, -1);
  const name = `${head.trimEnd()}${tail}`;
  return Buffer.byteLength(name) <= 63 ? name : `${thing}-${port}`.slice(0, 63);
}

export class DnsSdAdvertiser {
  #mdns: makeMdns.MulticastDNS | undefined;
  #instances: WotServiceInstance[] = [];
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: DnsSdAdvertiserOptions) {}

  /** Answer queries for the instances and announce them. Never throws: failures are logged. */
  start(instances: WotServiceInstance[]): void {
    this.#instances = instances;
    const { interfaceAddress, logger } = this.options;
    try {
      this.#mdns = makeMdns(
        interfaceAddress === undefined ? {} : { interface: interfaceAddress, bind: "0.0.0.0" },
      );
    } catch (error) {
      logger.error({ err: error }, "DNS-SD: cannot open the multicast DNS socket");
      return;
    }
    const mdns = this.#mdns;
    mdns.on("error", (error: Error) =>
      logger.error({ err: error }, "DNS-SD: multicast DNS socket failed; not advertised"),
    );
    mdns.on("warning", (error: Error) => logger.debug({ err: error }, "DNS-SD warning"));
    mdns.on("query", (query) => this.#answer(query));
    for (const delay of ANNOUNCE_DELAYS_MS) {
      const timer = setTimeout(() => this.#send(this.#records(RECORD_TTL_S)), delay);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /**
   * Goodbye: every record once more with TTL 0, so browsers drop the instances at once
   * (RFC 6762 §10.1), then close the socket. Bounded by `timeoutMs`; never throws.
   */
  async withdraw(timeoutMs: number): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    const mdns = this.#mdns;
    this.#mdns = undefined;
    if (!mdns) return;
    const sent = new Promise<void>((resolve) => {
      mdns.respond({ answers: this.#records(0) }, () => resolve());
    });
    const outcome = await settleWithin(sent, timeoutMs);
    if (outcome.kind !== "fulfilled") {
      this.options.logger.warn("DNS-SD: goodbye packets not sent in time");
    }
    mdns.destroy();
  }

  #send(answers: Answer[]): void {
    this.#mdns?.respond({ answers }, (error: Error | null) => {
      if (error) this.options.logger.warn({ err: error }, "DNS-SD: announcement not sent");
    });
  }

  #answer(query: makeMdns.QueryPacket): void {
    const answers: Answer[] = [];
    const { hostName } = this.options;
    for (const question of query.questions) {
      const name = question.name.toLowerCase();
      // dns-packet types ANY as "ANY" on the wire, though its typings leave it out.
      const type: string = question.type;
      if (name === WOT_SERVICE && (type === "PTR" || type === "ANY")) {
        answers.push(...this.#records(RECORD_TTL_S));
      } else if (name === SERVICE_ENUMERATION && (type === "PTR" || type === "ANY")) {
        answers.push({
          name: SERVICE_ENUMERATION,
          type: "PTR",
          ttl: RECORD_TTL_S,
          data: WOT_SERVICE,
        });
      } else if (name === hostName.toLowerCase() && (type === "A" || type === "ANY")) {
        answers.push(...this.#addressRecords(RECORD_TTL_S));
      } else {
        const instance = this.#instances.find((i) => fullName(i).toLowerCase() === name);
        if (instance && ["SRV", "TXT", "ANY"].includes(type)) {
          answers.push(
            ...this.#instanceRecords(instance, RECORD_TTL_S),
            ...this.#addressRecords(RECORD_TTL_S),
          );
        }
      }
    }
    if (answers.length > 0) this.#send(answers);
  }

  #records(ttl: number): Answer[] {
    return [
      ...this.#instances.flatMap((instance) => [
        { name: WOT_SERVICE, type: "PTR", ttl, data: fullName(instance) } as Answer,
        ...this.#instanceRecords(instance, ttl),
      ]),
      ...this.#addressRecords(ttl),
    ];
  }

  #instanceRecords(instance: WotServiceInstance, ttl: number): Answer[] {
    const name = fullName(instance);
    return [
      {
        name,
        type: "SRV",
        ttl,
        flush: true,
        data: { port: instance.port, target: this.options.hostName, priority: 0, weight: 0 },
      },
      {
        name,
        type: "TXT",
        ttl,
        flush: true,
        data: Object.entries(instance.txt).map(([key, value]) => `${key}=${value}`),
      },
    ];
  }

  #addressRecords(ttl: number): Answer[] {
    return this.options.addresses
      .filter((address) => !address.includes(":"))
      .map((address) => ({
        name: this.options.hostName,
        type: "A",
        ttl,
        flush: true,
        data: address,
      }));
  }
}

function fullName(instance: WotServiceInstance): string {
  return `${instance.name}.${WOT_SERVICE}`;
}
