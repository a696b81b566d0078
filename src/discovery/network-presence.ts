/**
 * How the server makes itself known once it listens, and withdraws at shutdown: DNS-SD
 * advertisement (one `_wot._tcp` instance per Thing) and TD Directory registration. Both
 * start in the background (start never waits on the network) and both are withdrawn
 * within the bound the shutdown sequence gives.
 */
import type { ThingLogger } from "../model/logger.js";
import { type DirectoryOptions, DirectoryRegistration } from "./directory-registration.js";
import { DnsSdAdvertiser, instanceName } from "./dns-sd-advertiser.js";
import {
  isLoopbackHost,
  isWildcardHost,
  machineLabel,
  reachableAddresses,
} from "./network-addresses.js";

/** `LABTHINGS_MDNS=off` (or 0, false, no) turns advertising off whatever the config says. */
export function mdnsEnabled(host: string, setting: boolean | undefined): boolean {
  const forced = process.env.LABTHINGS_MDNS?.trim().toLowerCase();
  if (forced && ["0", "off", "false", "no"].includes(forced)) return false;
  return setting ?? !isLoopbackHost(host);
}

export interface PresenceThing {
  name: string;
  title: string;
  id: string;
  /** The TD as a directory gets it (with the public base). */
  describe: () => Record<string, unknown>;
}

export interface PresenceOptions {
  host: string;
  port: number;
  /** The path prefix everything is served under (`""` or `/api`). */
  prefix: string;
  mdns: boolean;
  directory?: DirectoryOptions;
  logger: ThingLogger;
}

export class NetworkPresence {
  #advertiser: DnsSdAdvertiser | undefined;
  #directory: DirectoryRegistration | undefined;

  constructor(private readonly options: PresenceOptions) {}

  get directory(): DirectoryRegistration | undefined {
    return this.#directory;
  }

  /** Once withdrawing: the Things whose directory entry is not deleted (yet). */
  get directoryNotDeleted(): string[] {
    return this.#directory?.undeleted ?? [];
  }

  /** Advertise and register, in the background. Returns at once. */
  start(things: readonly PresenceThing[]): void {
    const { host, port, prefix, logger } = this.options;
    if (this.options.mdns) {
      const label = machineLabel();
      const addresses = reachableAddresses(host);
      this.#advertiser = new DnsSdAdvertiser({
        hostName: `${label}-${port}.local`,
        addresses,
        // A server bound to one IPv4 address is announced on that interface only.
        interfaceAddress: isWildcardHost(host) || host.includes(":") ? undefined : addresses[0],
        logger,
      });
      this.#advertiser.start(
        things.map((thing) => ({
          name: instanceName(thing.title, thing.name, label, port),
          port,
          txt: { td: `${prefix}/${thing.name}/`, type: "Thing", scheme: "http" },
        })),
      );
      logger.info(
        { service: "_wot._tcp", things: things.map((t) => t.name), addresses },
        "DNS-SD: advertising every Thing (mDNS)",
      );
    }
    if (this.options.directory) {
      this.#directory = new DirectoryRegistration(this.options.directory, logger);
      this.#directory.start(
        things.map((thing) => ({ name: thing.name, id: thing.id, describe: thing.describe })),
      );
    }
  }

  /**
   * Goodbye packets and directory deletes, side by side, within `timeoutMs`. Never throws;
   * resolves with the Things whose directory entry could not be deleted.
   */
  async withdraw(timeoutMs: number): Promise<{ directoryNotDeleted: string[] }> {
    const [, removed] = await Promise.all([
      this.#advertiser?.withdraw(Math.min(timeoutMs, 500)),
      this.#directory?.withdraw(timeoutMs).catch((error: unknown) => {
        this.options.logger.error({ err: error }, "TD directory: withdrawal failed");
        return { deleted: [], failed: this.#directory?.names ?? [] };
      }),
    ]);
    return { directoryNotDeleted: removed?.failed ?? [] };
  }
}
