/**
 * `serve`'s network flags and config keys from the command line: clear errors for mistakes
 * (exit 2, the key named), and a broker and a directory that are both down delaying
 * neither the start nor the shutdown of the built CLI.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, killAll, listeningUrl, STAGE, startCli } from "./support/cli-process.js";
import { freePort } from "./support/mosquitto.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

let dir: string;

async function config(name: string, body: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(body));
  return path;
}

async function runToExit(args: string[]) {
  const cli = startCli(args, { cwd: dir });
  const exit = await within(cli.closed, `the CLI (${args.join(" ")}) to exit`);
  return { ...exit, stderr: cli.stderr() };
}

beforeAll(async () => {
  assertBuilt();
  dir = await tempDir("labthings-cli-network-");
});
afterEach(killAll);
afterAll(removeTempDirs);

describe("serve: DNS-SD, directory and MQTT options", () => {
  it.each([
    { args: ["--mdns", "--no-mdns"], names: "--mdns or --no-mdns, not both" },
    {
      args: ["--mqtt", "http://127.0.0.1:1883"],
      names: '--mqtt: must be a URL starting with mqtt:// or mqtts://, not "http://127.0.0.1:1883"',
    },
    {
      args: ["--directory", "tdd.local"],
      names: '--directory: must be a URL starting with http:// or https://, not "tdd.local"',
    },
  ])("$args exits with code 2 and says why", async ({ args, names }) => {
    const path = await config("stage.json", { things: { stage: STAGE } });
    const { code, stderr } = await runToExit(["--config", path, "--port", "0", ...args]);
    expect(code).toBe(2);
    expect(stderr).toContain(names);
  });

  it.each([
    {
      body: { mqtt: { url: "mqtt://127.0.0.1:1883", topicPrefix: "lab/#" } },
      names: "mqtt.topicPrefix: must match",
    },
    {
      body: { mqtt: { url: "mqtt://127.0.0.1:1883", passwordFile: "missing.txt" } },
      names: "config mqtt.passwordFile: cannot read",
    },
    {
      body: { directory: { url: "http://127.0.0.1:1/", ttlSeconds: 0 } },
      names: "directory.ttlSeconds: must be at least",
    },
    { body: { mdns: "yes" }, names: "mdns: must be true or false" },
  ])("a bad key ($names) exits with code 2 and names it", async ({ body, names }) => {
    const path = await config("bad.json", { things: { stage: STAGE }, ...body });
    const { code, stderr } = await runToExit(["--config", path, "--port", "0"]);
    expect(code).toBe(2);
    expect(stderr).toContain(names);
  });

  it("a broker and a directory that are both down delay neither start nor shutdown; the secrets come from files beside the config", async () => {
    const sub = join(dir, "lab");
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, "directory-token"), "tdd-token-0123456789\n");
    await writeFile(join(sub, "broker-password"), "hunter2\n");
    const [brokerPort, directoryPort] = [await freePort(), await freePort()];
    const path = join(sub, "lab.json");
    await writeFile(
      path,
      JSON.stringify({
        things: { stage: STAGE },
        directory: { url: "http://127.0.0.1:1/", tokenFile: "directory-token" },
        mqtt: {
          url: "mqtt://127.0.0.1:1",
          topicPrefix: "lab/one",
          username: "lab",
          passwordFile: "broker-password",
        },
      }),
    );
    // The flags replace the URLs and keep the rest of each section (token, prefix, credentials).
    const cli = startCli([
      "--config",
      path,
      "--port",
      "0",
      "--mqtt",
      `mqtt://127.0.0.1:${brokerPort}`,
      "--directory",
      `http://127.0.0.1:${directoryPort}/`,
    ]);
    const url = await listeningUrl(cli);
    const td = (await (await fetch(`${url}/stage/`)).json()) as {
      properties: Record<string, { forms: { href: string; security?: string[] }[] }>;
    };
    const mqttForm = td.properties.position!.forms.find((form) => form.href.startsWith("mqtt:"))!;
    expect(mqttForm.href).toBe(`mqtt://127.0.0.1:${brokerPort}/lab/one/stage/properties/position`);
    expect(mqttForm.security).toEqual(["mqtt_broker_basic_sc"]);
    await cli.waitForLog(
      (line) => String(line.msg).startsWith("MQTT: cannot reach the broker"),
      "the broker warning",
    );
    await cli.waitForLog(
      (line) => String(line.msg).startsWith("TD directory unreachable"),
      "the directory warning",
    );
    // No secret in the log.
    const log = JSON.stringify(cli.lines);
    expect(log).not.toContain("hunter2");
    expect(log).not.toContain("tdd-token-0123456789");
    cli.signal("SIGTERM");
    const exit = await cli.exited;
    expect(exit.code).toBe(0);
    const clean = cli.lines.find((line) => line.msg === "shut down cleanly")!;
    expect(clean.durationMs as number).toBeLessThan(1000);
  });
});
