import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import closeWithGrace from "close-with-grace";
import type { ServerConfig } from "../config/config-schema.js";
import { LOG_LEVELS } from "../config/config-schema.js";
import { readConfigFile, resolveConfigPath, validateConfig } from "../config/load-config.js";
import { loadThings } from "../config/load-things.js";
import { isLoopbackHost, machineLabel } from "../discovery/network-addresses.js";
import { ConfigError } from "../errors.js";
import { DEFAULTS, ThingServer, type ThingServerOptions } from "../http/thing-server.js";
import { createLogger } from "../logging/logger.js";

export const SERVE_USAGE = `Usage: labthings-ts serve [options]

Serve the Things of a config file (without --config: the simulated microscope).

Options:
  -c, --config FILE          JSON config file; relative paths in it resolve against its folder
  -H, --host HOST            interface to bind (default 127.0.0.1)
  -p, --port PORT            TCP port; 0 picks a free one (default 5000)
      --token-file FILE      require 'Authorization: Bearer <token>' with the token in FILE
                             (or set LABTHINGS_TOKEN); TDs stay readable
      --require-all          exit if any Thing fails to start (default: serve the others)
      --settings-dir DIR     where @setting values are saved (default ./settings,
                             or settingsDir in the config file)
      --shutdown-timeout MS  hard deadline for shutdown (default 5000)
      --mdns, --no-mdns      advertise the Things over DNS-SD (default: on unless
                             the host is loopback)
      --directory URL        register every TD with this W3C TD Directory
      --mqtt URL             publish through this MQTT broker (mqtt://host:1883)
      --log-level LEVEL      ${LOG_LEVELS.join(" | ")} (default info)
      --log-format FORMAT    pretty | json (default: pretty on a terminal)
  -h, --help                 show this help
Flags override the config file.`;

/** Parse the flags over the config file's values; every mistake is a ConfigError naming it. */
async function resolveServeConfig(
  args: string[],
): Promise<{ config: ServerConfig; baseDir: string; help: boolean }> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string", short: "H" },
        port: { type: "string", short: "p" },
        "shutdown-timeout": { type: "string" },
        "settings-dir": { type: "string" },
        "token-file": { type: "string" },
        "require-all": { type: "boolean" },
        mdns: { type: "boolean" },
        "no-mdns": { type: "boolean" },
        directory: { type: "string" },
        mqtt: { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError("arguments", (error as Error).message);
  }
  const { config, baseDir } = values.config
    ? await readConfigFile(String(values.config))
    : { config: (await import("./default-config.js")).defaultConfig(), baseDir: process.cwd() };
  const overrides: Record<string, unknown> = {};
  if (values.host !== undefined) overrides.host = values.host;
  if (values.port !== undefined) overrides.port = flagInteger("--port", values.port);
  if (values["shutdown-timeout"] !== undefined) {
    overrides.shutdownTimeoutMs = flagInteger("--shutdown-timeout", values["shutdown-timeout"]);
  }
  // A flag's path is relative to the working directory, like any command-line path.
  if (values["settings-dir"] !== undefined) {
    overrides.settingsDir = resolve(String(values["settings-dir"]));
  }
  if (values["require-all"] !== undefined) overrides.requireAllThings = values["require-all"];
  if (values["token-file"] !== undefined) {
    overrides.auth = { tokenFile: resolve(String(values["token-file"])) };
  }
  if (values.mdns && values["no-mdns"])
    throw new ConfigError("--mdns", "give --mdns or --no-mdns, not both");
  if (values.mdns !== undefined) overrides.mdns = true;
  if (values["no-mdns"] !== undefined) overrides.mdns = false;
  // A flag keeps the config file's other directory and MQTT settings (token, prefix, …).
  if (values.directory !== undefined) {
    overrides.directory = { ...config.directory, url: values.directory };
  }
  if (values.mqtt !== undefined) overrides.mqtt = { ...config.mqtt, url: values.mqtt };
  if (values["log-level"] !== undefined) overrides.logLevel = values["log-level"];
  if (values["log-format"] !== undefined) overrides.logFormat = values["log-format"];
  return {
    config: validateConfig({ ...config, ...overrides }),
    baseDir,
    help: values.help === true,
  };
}

/** The bearer token: LABTHINGS_TOKEN, else the config's `auth.tokenFile`; none means no authentication. */
async function readToken(config: ServerConfig, baseDir: string): Promise<string | undefined> {
  const fromEnvironment = process.env.LABTHINGS_TOKEN;
  if (fromEnvironment !== undefined && fromEnvironment.trim() !== "") return fromEnvironment.trim();
  if (!config.auth) return undefined;
  return readSecretFile(baseDir, config.auth.tokenFile, "auth.tokenFile");
}

/** A secret kept in a file named by the config (a token, a password): trimmed, never empty. */
async function readSecretFile(baseDir: string, path: string, key: string): Promise<string> {
  const file = resolveConfigPath(baseDir, path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(key, `cannot read ${file}: ${(error as Error).message}`);
  }
  const secret = text.trim();
  if (secret === "") throw new ConfigError(key, `${file} is empty`);
  return secret;
}

/** The directory and MQTT options, with their secrets read and defaults filled in. */
async function networkOptions(
  config: ServerConfig,
  baseDir: string,
  port: number,
): Promise<Pick<ThingServerOptions, "directory" | "mqtt">> {
  const { directory, mqtt } = config;
  return {
    directory: directory && {
      url: directory.url,
      ttlSeconds: directory.ttlSeconds,
      token: directory.tokenFile
        ? await readSecretFile(baseDir, directory.tokenFile, "directory.tokenFile")
        : undefined,
    },
    mqtt: mqtt && {
      url: mqtt.url,
      // Two servers on one machine differ by port (by process when the port is picked).
      topicPrefix: mqtt.topicPrefix ?? `labthings/${machineLabel()}-${port || process.pid}`,
      username: mqtt.username,
      password: mqtt.passwordFile
        ? await readSecretFile(baseDir, mqtt.passwordFile, "mqtt.passwordFile")
        : undefined,
      commands: mqtt.commands,
      advertisedUrl: mqtt.advertisedUrl,
      protocolVersion: mqtt.protocolVersion,
    },
  };
}

function flagInteger(flag: string, value: unknown): number {
  const number = Number(value);
  if (!Number.isInteger(number)) throw new ConfigError(flag, `'${value}' is not a whole number`);
  return number;
}

/** `labthings-ts serve`: load, start, listen, and shut down cleanly on SIGINT/SIGTERM. */
export async function serve(args: string[]): Promise<void> {
  const startedAt = performance.now();
  const { config, baseDir, help } = await resolveServeConfig(args);
  if (help) {
    console.log(SERVE_USAGE);
    return;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const authToken = await readToken(config, baseDir);
  const entries = await loadThings(config, baseDir);
  const server = new ThingServer(entries, {
    host: config.host,
    port: config.port,
    apiPrefix: config.apiPrefix,
    cors: config.cors,
    limits: config.limits,
    authToken,
    requireAllThings: config.requireAllThings,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    trustProxy: config.trustProxy,
    // Relative to the config file's folder (the working directory without a config).
    settingsDir: resolveConfigPath(baseDir, config.settingsDir ?? "settings"),
    actionRetentionMs: config.actionRetentionMs,
    maxRetainedInvocations: config.maxRetainedInvocations,
    mdns: config.mdns,
    publicUrl: config.publicUrl,
    fleet: config.fleet,
    ...(await networkOptions(config, baseDir, config.port ?? DEFAULTS.port)),
    logger,
  });
  const host = config.host ?? DEFAULTS.host;
  if (authToken === undefined && !isLoopbackHost(host)) {
    logger.warn(
      { host },
      `listening on ${host} without authentication: anyone who can reach this machine can control its instruments`,
    );
  }
  const shutdownTimeoutMs = config.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs;
  // close-with-grace: first signal runs the sequence (bounded by its delay); a second exits at once.
  const graceful = closeWithGrace(
    {
      // The server enforces its own deadline; this one only catches a sequence that wedged.
      delay: shutdownTimeoutMs + 1000,
      logger: false,
      onSecondSignal: (signal) => logger.warn({ signal }, "second signal: exiting now"),
      onTimeout: (ms) => logger.error({ ms }, "shutdown did not finish: exiting now"),
    },
    async ({ signal, err }) => {
      if (err) logger.error({ err }, "fatal error, shutting down");
      else logger.info({ signal }, "shutting down");
      const report = await server.close();
      const clean =
        !err &&
        report.hungThings.length === 0 &&
        report.settingsSaved &&
        report.failedThings.length === 0 &&
        !report.forced;
      const summary = { ...report, durationMs: Math.round(report.durationMs) };
      if (clean) logger.info(summary, "shut down cleanly");
      else logger.error(summary, "shut down with problems");
      // close-with-grace exits 0 when this resolves, 1 when it throws.
      if (!clean) throw new Error("unclean shutdown");
    },
  );
  const url = await server.start().catch((error: unknown) => {
    graceful.uninstall();
    throw error;
  });
  if (authToken !== undefined) logger.info("authentication on: requests need the bearer token");
  if (server.registry.failed.size > 0) {
    logger.error(
      { failed: Object.fromEntries(server.registry.failed) },
      `serving without ${[...server.registry.failed.keys()].join(", ")}: failed to start (their URLs answer 503)`,
    );
  }
  logger.info(
    { url, things: server.registry.names, startupMs: Math.round(performance.now() - startedAt) },
    `listening on ${url}/`,
  );
}
