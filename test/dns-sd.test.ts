/**
 * DNS-SD (mDNS) introduction, W3C WoT Discovery: every test runs inside a private network
 * namespace holding only its own loopback interface, so no multicast ever leaves it (and
 * the suite never sends DNS-SD on the machine's interfaces). Without root (no namespace)
 * the tests are skipped with the reason printed.
 *
 * Four servers of the built CLI: A on 0.0.0.0 (on by default), B on 127.0.0.1 with
 * `--mdns`, C on 0.0.0.0 with `--no-mdns`, D on 127.0.0.1 (off by default). Debian's
 * python3-zeroconf must see A's and B's Things only, with the right port and TXT, and see
 * them withdrawn at shutdown; `labthings-ts discover` must find the two servers; A's fleet
 * listing must hold B, found by DNS-SD.
 *
 * The whole picture in the same namespace: A and B also publish through a Mosquitto broker
 * and register with a TD directory (a Directory-API stand-in) running there, and a
 * consumer that reads only B's TD — taken from the broker — observes B through it.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  CLI,
  type Cli,
  killAll,
  listeningUrl,
  STAGE,
  startCli,
} from "./support/cli-process.js";
import { NetworkNamespace } from "./support/network-namespace.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { until, within } from "./support/within.js";

const ZEROCONF = fileURLToPath(new URL("./support/zeroconf-browse.py", import.meta.url));
const ANNOUNCE = fileURLToPath(new URL("./support/zeroconf-advertise.py", import.meta.url));
const FLOOD = fileURLToPath(new URL("./support/dns-sd-flood.mjs", import.meta.url));
const CONSUMER = fileURLToPath(new URL("./support/td-only-consumer.mjs", import.meta.url));
const DIRECTORY = fileURLToPath(new URL("./support/directory-recorder.mjs", import.meta.url));
/** Inside the namespace every port is free: its loopback is its own. */
const BROKER_PORT = 1883;
const DIRECTORY_PORT = 8090;
const PYTHON = "/usr/bin/python3"; // Debian's, which has python3-zeroconf

interface ZeroconfEvent {
  event: string;
  name?: string;
  port?: number;
  txt?: Record<string, string>;
  addresses?: string[];
}

const NETWORK_FLAGS = [
  "--mqtt",
  `mqtt://127.0.0.1:${BROKER_PORT}`,
  "--directory",
  `http://127.0.0.1:${DIRECTORY_PORT}/`,
];

let namespace: NetworkNamespace | undefined;
let skipReason: string | undefined;
const servers: Record<string, { cli: Cli; url: string; port: number }> = {};
const events: ZeroconfEvent[] = [];
const directoryRequests: { method: string; path: string; contentType?: string; ttl?: number }[] =
  [];

async function startServer(name: string, args: string[], dir: string): Promise<void> {
  const config = join(dir, `${name}.json`);
  await writeFile(config, JSON.stringify({ things: { stage: STAGE, [`probe${name}`]: STAGE } }));
  const cli = startCli(
    ["--config", config, "--port", "0", "--settings-dir", join(dir, name), ...args],
    {
      launcher: namespace!.launcher,
      // The suite forces mDNS off (vitest.config.ts); inside the namespace it may run.
      env: { LABTHINGS_MDNS: "" },
    },
  );
  const url = await listeningUrl(cli);
  servers[name] = { cli, url, port: Number(new URL(url).port) };
}

beforeAll(async () => {
  assertBuilt();
  const made = await NetworkNamespace.create();
  if (typeof made === "string") {
    skipReason = made;
    console.log(`dns-sd tests skipped: ${made}`);
    return;
  }
  namespace = made;
  const dir = await tempDir("labthings-dnssd-");
  const brokerConfig = join(dir, "mosquitto.conf");
  await writeFile(
    brokerConfig,
    `listener ${BROKER_PORT} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
  );
  namespace.spawn("mosquitto", ["-c", brokerConfig]);
  const directory = namespace.spawn(process.execPath, [DIRECTORY, String(DIRECTORY_PORT)]);
  const directoryListening = new Promise<void>((resolve) => {
    createInterface({ input: directory.stdout! }).on("line", (line) => {
      const record = JSON.parse(line) as { port?: number; method?: string; path?: string };
      if (record.port) resolve();
      else directoryRequests.push(record as (typeof directoryRequests)[number]);
    });
  });
  await within(directoryListening, "the directory stand-in");
  const browser = namespace.spawn(PYTHON, [ZEROCONF, "40"]);
  createInterface({ input: browser.stdout! }).on("line", (line) =>
    events.push(JSON.parse(line) as ZeroconfEvent),
  );
  await until(() => events.some((e) => e.event === "browsing"), "zeroconf to start browsing");
  await Promise.all([
    startServer("A", ["--host", "0.0.0.0", ...NETWORK_FLAGS], dir),
    startServer("B", ["--host", "127.0.0.1", "--mdns", ...NETWORK_FLAGS], dir),
    startServer("C", ["--host", "0.0.0.0", "--no-mdns"], dir),
    startServer("D", ["--host", "127.0.0.1"], dir),
  ]);
});

afterAll(async () => {
  await killAll();
  namespace?.close();
  await removeTempDirs();
});

const adds = () => events.filter((e) => e.event === "add" || e.event === "update");

async function waitForEvents(test: () => boolean, what: string): Promise<void> {
  await until(() => test(), what);
}

describe("DNS-SD inside a private network namespace", () => {
  it("python3-zeroconf finds each Thing of A and B as _wot._tcp with the port and the TXT members td, type, scheme", async (context) => {
    if (skipReason) return context.skip();
    await waitForEvents(
      () => new Set(adds().map((e) => e.name)).size >= 4,
      "zeroconf to find four Things",
    );
    const found = new Map(adds().map((e) => [e.name!, e]));
    const byPort = (port: number) => [...found.values()].filter((e) => e.port === port);
    for (const name of ["A", "B"]) {
      const { port } = servers[name]!;
      const instances = byPort(port);
      expect(instances.map((e) => e.txt).sort((a, b) => a!.td!.localeCompare(b!.td!))).toEqual([
        { td: `/probe${name}/`, type: "Thing", scheme: "http" },
        { td: "/stage/", type: "Thing", scheme: "http" },
      ]);
      for (const instance of instances) {
        expect(instance.name).toMatch(
          new RegExp(
            `^Simulated stage \\((stage|probe${name})\\) on .+:${port}\\._wot\\._tcp\\.local\\.$`,
          ),
        );
        expect(instance.addresses).toEqual(["127.0.0.1"]);
      }
    }
    // C (--no-mdns) and D (loopback, the default) are not advertised.
    expect(byPort(servers.C!.port)).toEqual([]);
    expect(byPort(servers.D!.port)).toEqual([]);
  });

  it("labthings-ts discover finds the two advertising servers and their Things", async (context) => {
    if (skipReason) return context.skip();
    const { stdout } = await namespace!.exec(process.execPath, [
      CLI,
      "discover",
      "--timeout",
      "2",
      "--json",
    ]);
    const found = stdout
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as {
            url: string;
            things: { name: string; title: string; td: string }[];
          },
      );
    expect(found.map((server) => server.url)).toEqual(
      [servers.A!, servers.B!].map(({ port }) => `http://127.0.0.1:${port}/`).sort(),
    );
    for (const server of found) {
      const port = new URL(server.url).port;
      const name = port === String(servers.A!.port) ? "A" : "B";
      expect(server.things).toEqual(
        [`probe${name}`, "stage"].map((thing) => ({
          name: thing,
          title: "Simulated stage",
          td: `${server.url}${thing}/`,
        })),
      );
    }
    const { stdout: text } = await namespace!.exec(process.execPath, [
      CLI,
      "discover",
      "-t",
      "1.5",
    ]);
    expect(text).toContain(
      `http://127.0.0.1:${servers.A!.port}/\n  probeA  Simulated stage\n  stage   Simulated stage`,
    );
  });

  it("A's fleet listing holds B, found by DNS-SD, with its Things", async (context) => {
    if (skipReason) return context.skip();
    const fleetUrl = `http://127.0.0.1:${servers.A!.port}/_fleet/servers`;
    const { stdout } = await namespace!.exec("curl", ["-sf", fleetUrl]);
    const listing = JSON.parse(stdout) as {
      servers: {
        url: string;
        sources: string[];
        online: boolean;
        title: string;
        things: { name: string; status: string }[];
      }[];
    };
    const b = listing.servers.find(
      (server) => server.url === `http://127.0.0.1:${servers.B!.port}/`,
    );
    expect(b).toMatchObject({
      sources: ["directory", "dns-sd"],
      online: true,
      title: expect.stringMatching(/^labthings-ts on /),
    });
    expect(b!.things.map((thing) => [thing.name, thing.status])).toEqual([
      ["probeB", "ok"],
      ["stage", "ok"],
    ]);
    // Not advertised, so not found.
    expect(listing.servers.map((server) => server.url)).not.toContain(
      `http://127.0.0.1:${servers.C!.port}/`,
    );
  });

  it("A and B register with the directory; a consumer that read only B's TD, from the broker, observes B through it", async (context) => {
    if (skipReason) return context.skip();
    await waitForEvents(
      () => directoryRequests.filter((r) => r.method === "PUT").length >= 4,
      "A's and B's registrations",
    );
    const puts = directoryRequests.filter((r) => r.method === "PUT");
    expect(puts.every((r) => r.contentType === "application/td+json" && r.ttl === 600)).toBe(true);
    const b = servers.B!;
    const connected = await b.cli.waitForLog(
      (line) => line.msg === "MQTT: connected to the broker",
      "B's broker connection",
    );
    const prefix = String(connected.prefix);
    const consumer = namespace!.spawn(process.execPath, [
      CONSUMER,
      `mqtt://127.0.0.1:${BROKER_PORT}`,
      `${prefix}/stage/td`,
      "speed",
    ]);
    const values: unknown[] = [];
    let ready: { id?: string } | undefined;
    createInterface({ input: consumer.stdout! }).on("line", (line) => {
      const record = JSON.parse(line) as { ready?: boolean; id?: string; value?: unknown };
      if (record.ready) ready = record;
      else values.push(record.value);
    });
    await waitForEvents(() => ready !== undefined && values.length > 0, "the consumer to observe");
    const bUrl = `http://127.0.0.1:${b.port}`;
    const { stdout: tdText } = await namespace!.exec("curl", ["-sf", `${bUrl}/stage/`]);
    expect(ready!.id).toBe((JSON.parse(tdText) as { id: string }).id);
    await namespace!.exec("curl", [
      "-sf",
      "-X",
      "PUT",
      "-H",
      "content-type: application/json",
      "-d",
      "4321",
      `${bUrl}/stage/speed`,
    ]);
    await waitForEvents(() => values.includes(4321), "the change, through the broker");
    consumer.kill("SIGTERM");
  });

  it("SIGTERM withdraws the advertisements at once (goodbye packets) and the shutdown stays fast", async (context) => {
    if (skipReason) return context.skip();
    const a = servers.A!;
    const before = events.length;
    a.cli.signal("SIGTERM");
    const exit = await a.cli.exited;
    expect(exit.code).toBe(0);
    await waitForEvents(
      () =>
        events.slice(before).filter((e) => e.event === "remove" && e.name!.includes(`:${a.port}.`))
          .length === 2,
      "zeroconf to see A's two Things removed",
    );
    const clean = a.cli.lines.find((line) => line.msg === "shut down cleanly")!;
    expect(clean.durationMs as number).toBeLessThan(1000);
    // Its directory entries went with it.
    await waitForEvents(
      () => directoryRequests.filter((r) => r.method === "DELETE").length === 2,
      "A's directory entries deleted",
    );
    // B is still there.
    expect(
      events
        .slice(before)
        .some((e) => e.event === "remove" && e.name!.includes(`:${servers.B!.port}.`)),
    ).toBe(false);
  });

  it("an announcement that makes no http(s) URL (anyone on the network can send one) is left out; the fleet listing still answers", async (context) => {
    if (skipReason) return context.skip();
    // Last in the file: the announcer is killed without a goodbye, so it stays cached.
    const announcer = namespace!.spawn(PYTHON, [ANNOUNCE, "odd", "9", "a b", "/x/"]);
    await within(
      new Promise((resolve) => createInterface({ input: announcer.stdout! }).once("line", resolve)),
      "the odd announcement",
    );
    await waitForEvents(
      () => adds().some((e) => e.name === "odd._wot._tcp.local."),
      "zeroconf to see the odd announcement",
    );
    const fleetUrl = `http://127.0.0.1:${servers.B!.port}/_fleet/servers`;
    // It used to throw while the listing was made: 500 for everyone while announced.
    for (let round = 0; round < 3; round++) {
      const { stdout } = await namespace!.exec("curl", ["-s", "-w", "\\n%{http_code}", fleetUrl]);
      const [body, status] = stdout.split("\n");
      expect(status, body).toBe("200");
      expect(body).not.toContain("a b://");
      await new Promise((resolve) => setTimeout(resolve, 1200));
    }
    announcer.kill();
  });
  it("a flood of announcements with TTLs of years is bounded: the real servers stay found", async (context) => {
    if (skipReason) return context.skip();
    // After every other test (A and B have shut down): the flood stays cached.
    await startServer("E", ["--host", "127.0.0.1", "--mdns"], await tempDir("labthings-dnssd-"));
    const discover = namespace!.spawn(process.execPath, [CLI, "discover", "-t", "4", "--json"]);
    let stdout = "";
    discover.stdout!.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    const exited = new Promise((resolve) => discover.once("exit", resolve));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { stdout: flooded } = await namespace!.exec(process.execPath, [FLOOD, "1500"]);
    expect(flooded.trim()).toBe("flooded 1500");
    await within(exited, "discover to finish", 30_000);
    const urls = stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { url: string }).url);
    expect(urls, "the real server, announced before the flood").toContain(
      `http://127.0.0.1:${servers.E!.port}/`,
    );
    const fakes = urls.filter((url) => Number(new URL(url).port) >= 20000);
    expect(fakes.length, "the flood reached the browser").toBeGreaterThan(100);
    expect(urls.length, "kept at most 1024 instances").toBeLessThanOrEqual(1024);
  });
});
