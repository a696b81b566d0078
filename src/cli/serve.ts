import { readFile } from "node:fs/promises";
import closeWithGrace from "close-with-grace";
import type { ServerConfig } from "../config/config-schema.js";
import { readConfigJson, resolveConfigPath, validateConfig } from "../config/load-config.js";
import { loadThings } from "../config/load-things.js";
import { isLoopbackHost, machineLabel } from "../discovery/network-addresses.js";
import { ConfigError } from "../errors.js";
import { DEFAULTS, ThingServer, type ThingServerOptions } from "../http/thing-server.js";
import { brief, createLogger, debugForPeople } from "../logging/logger.js";
import { reportFailure } from "./cli-errors.js";
import { parseServeFlags, serveUsage } from "./serve-flags.js";

export const SERVE_USAGE = serveUsage();

/** Parse the flags over the config file's values; every mistake is named, flags by flag. */
async function resolveServeConfig(
  args: string[],
): Promise<{ config: ServerConfig; baseDir: string; help: boolean }> {
  const flags = parseServeFlags(args);
  if (flags.help) return { config: { things: {} }, baseDir: process.cwd(), help: true };
  // The file is read as JSON and validated once, with the flags laid over it.
  const { raw, baseDir, source } = flags.configFile
    ? await readConfigJson(flags.configFile)
    : {
        raw: (await import("./default-config.js")).defaultConfig(),
        baseDir: process.cwd(),
        source: undefined,
      };
  const merged = mergeOverrides(raw, flags.overrides);
  return {
    config: validateConfig(merged, {
      source,
      flags: flags.flagsByKey,
      ...(flags.configFile ? { file: raw } : {}),
    }),
    baseDir,
    help: false,
  };
}

/** The config with the flags' values laid over it, objects merged key by key. */
function mergeOverrides(base: unknown, overrides: Record<string, unknown>): unknown {
  if (typeof base !== "object" || base === null || Array.isArray(base)) return overrides;
  const merged: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(overrides)) {
    const current = merged[key];
    merged[key] =
      typeof value === "object" && value !== null && !Array.isArray(value)
        ? mergeOverrides(current, value as Record<string, unknown>)
        : value;
  }
  return merged;
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

/** `labthings-ts serve`: load, start, listen, and shut down cleanly on SIGINT/SIGTERM. */
export async function serve(args: string[]): Promise<void> {
  // Known before the config is: a mistake in it shows its stack at --log-level debug too.
  let debug = /^(debug|trace)$/.test(flagValue(args, "--log-level") ?? "");
  try {
    const startedAt = performance.now();
    const { config, baseDir, help } = await resolveServeConfig(args);
    if (help) {
      console.log(SERVE_USAGE);
      return;
    }
    debug = config.logLevel === "debug" || config.logLevel === "trace";
    await run(config, baseDir, startedAt);
  } catch (error) {
    reportFailure(error, { debug });
  }
}

/** The value after `flag` (`--log-level debug` or `--log-level=debug`), if given. */
function flagValue(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  if (at >= 0) return args[at + 1];
  return args.find((arg) => arg.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

async function run(config: ServerConfig, baseDir: string, startedAt: number): Promise<void> {
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
      // For log collectors; a person sees the one closing line below.
      else logger.info(debugForPeople({ signal }), "shutting down");
      const report = await server.close();
      const clean =
        !err &&
        report.hungThings.length === 0 &&
        report.settingsSaved &&
        report.failedThings.length === 0 &&
        !report.forced;
      const summary = { ...report, durationMs: Math.round(report.durationMs) };
      const after = signal ? ` (${signal})` : "";
      if (clean) {
        logger.info(
          brief(summary, `shut down cleanly in ${summary.durationMs} ms${after}`),
          "shut down cleanly",
        );
      } else logger.error(summary, "shut down with problems");
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
  const docs = `${url}/docs`;
  logger.info(
    brief({
      url,
      dashboard: `${url}/`,
      docs,
      things: server.registry.names,
      startupMs: Math.round(performance.now() - startedAt),
    }),
    `listening on ${url}/ — open it for the dashboard; API docs at ${docs}`,
  );
}
