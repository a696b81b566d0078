/**
 * `labthings-ts serve`'s flags, in one table: the parser, the usage text and the config
 * keys they override all come from it. A flag that sets a config key gets its value
 * converted by that key's schema type and its mistakes reported by the config's
 * validator, named by the flag. To add a flag, add a row.
 */
import { resolve } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { LOG_LEVELS, ServerConfig } from "../config/config-schema.js";
import { ArgumentError, parseArguments } from "./cli-errors.js";

export interface ServeFlag {
  /** `port` for `--port`. */
  readonly name: string;
  readonly short?: string;
  /** Placeholder in the usage, e.g. `PORT`; none for a switch. */
  readonly value?: string;
  /** The config key (dotted path) the flag sets; none for flags that steer the command. */
  readonly key?: string;
  /** A path: resolved against the working directory, as command-line paths are. */
  readonly path?: boolean;
  /** For a switch: the value it gives its key (default `true`), e.g. `false` for `--no-mdns`. */
  readonly sets?: unknown;
  /** Another flag this one is useless without, unless the config file sets that flag's key. */
  readonly needs?: string;
  /** One or more lines of help. */
  readonly help: string;
}

export const SERVE_FLAGS: readonly ServeFlag[] = [
  {
    name: "config",
    short: "c",
    value: "FILE",
    help: "JSON config file; relative paths in it resolve against its folder",
  },
  {
    name: "host",
    short: "H",
    value: "HOST",
    key: "host",
    help: "interface to bind (default 127.0.0.1)",
  },
  {
    name: "port",
    short: "p",
    value: "PORT",
    key: "port",
    help: "TCP port; 0 picks a free one (default 5000)",
  },
  {
    name: "token-file",
    value: "FILE",
    key: "auth.tokenFile",
    path: true,
    help: "require 'Authorization: Bearer <token>' with the token in FILE\n(or set LABTHINGS_TOKEN); TDs stay readable. Viewer tokens:\nauth.tokens in the config file",
  },
  {
    name: "tls-cert",
    value: "FILE",
    key: "tls.certFile",
    path: true,
    needs: "tls-key",
    help: "serve HTTPS (and WSS) with this PEM certificate ...",
  },
  {
    name: "tls-key",
    value: "FILE",
    key: "tls.keyFile",
    path: true,
    needs: "tls-cert",
    help: "... and its private key (give both)",
  },
  {
    name: "require-all",
    key: "requireAllThings",
    help: "exit if any Thing fails to start (default: serve the others)",
  },
  {
    name: "settings-dir",
    value: "DIR",
    key: "settingsDir",
    path: true,
    help: "where @setting values are saved (default ./settings,\nor settingsDir in the config file)",
  },
  {
    name: "shutdown-timeout",
    value: "MS",
    key: "shutdownTimeoutMs",
    help: "hard deadline for shutdown (default 5000)",
  },
  {
    name: "mdns",
    key: "mdns",
    help: "advertise the Things over DNS-SD (default: on unless the host is loopback)",
  },
  { name: "no-mdns", key: "mdns", sets: false, help: "do not advertise over DNS-SD" },
  {
    name: "directory",
    value: "URL",
    key: "directory.url",
    help: "register every TD with this W3C TD Directory",
  },
  {
    name: "mqtt",
    value: "URL",
    key: "mqtt.url",
    help: "publish through this MQTT broker (mqtt://host:1883)",
  },
  {
    name: "log-level",
    value: "LEVEL",
    key: "logLevel",
    help: `${LOG_LEVELS.join(" | ")} (default info)`,
  },
  {
    name: "log-format",
    value: "FORMAT",
    key: "logFormat",
    help: "pretty | json (default: pretty on a terminal)",
  },
  { name: "help", short: "h", help: "show this help" },
];

/** The usage text, from the table. */
export function serveUsage(flags: readonly ServeFlag[] = SERVE_FLAGS): string {
  const heads = flags.map(
    (flag) =>
      `${flag.short ? `-${flag.short}, ` : "    "}--${flag.name}${flag.value ? ` ${flag.value}` : ""}`,
  );
  const width = Math.max(...heads.map((head) => head.length)) + 2;
  const rows = flags.flatMap((flag, i) =>
    flag.help.split("\n").map((line, j) => `  ${(j === 0 ? heads[i]! : "").padEnd(width)}${line}`),
  );
  return [
    "Usage: labthings-ts serve [options]",
    "",
    "Serve the Things of a config file (without --config: the simulated microscope).",
    "",
    "Options:",
    ...rows,
    "Flags override the config file.",
  ].join("\n");
}

export interface ParsedServeFlags {
  /** `--config`, when given. */
  configFile: string | undefined;
  help: boolean;
  /** The config values the flags give, nested as in the file (`{ auth: { tokenFile } }`). */
  overrides: Record<string, unknown>;
  /** Config key (dotted) → the flag that set it, so its mistakes are named by the flag. */
  flagsByKey: Record<string, string>;
}

/** Parse serve's arguments: ArgumentError for a mistake in them, values by config key. */
export function parseServeFlags(args: string[], flags = SERVE_FLAGS): ParsedServeFlags {
  const options = Object.fromEntries(
    flags.map((flag) => [
      flag.name,
      { type: flag.value ? "string" : "boolean", ...(flag.short ? { short: flag.short } : {}) },
    ]),
  ) as Record<string, { type: "string" | "boolean"; short?: string }>;
  const { values } = parseArguments("serve", {
    args,
    options,
    strict: true,
    allowPositionals: false,
  });
  const overrides: Record<string, unknown> = {};
  const flagsByKey: Record<string, string> = {};
  for (const flag of flags) {
    const given = values[flag.name];
    if (given === undefined || !flag.key) continue;
    // Two flags for one key (--mdns and --no-mdns) cannot both be meant.
    const earlier = flagsByKey[flag.key];
    if (earlier) throw new ArgumentError("serve", `give ${earlier} or --${flag.name}, not both`);
    setPath(overrides, flag.key, flag.value ? converted(flag, given) : (flag.sets ?? given));
    flagsByKey[flag.key] = `--${flag.name}`;
  }
  return {
    configFile: typeof values.config === "string" ? values.config : undefined,
    help: values.help === true,
    overrides,
    flagsByKey,
  };
}

/**
 * Flags given without the flag they need (`--tls-cert` without `--tls-key`) when the
 * config file does not set that one's key either: said by flag, not by config key.
 */
export function checkFlagPairs(parsed: ParsedServeFlags, file: unknown, flags = SERVE_FLAGS): void {
  for (const flag of flags) {
    if (!flag.needs || !flag.key || parsed.flagsByKey[flag.key] === undefined) continue;
    const needed = flags.find((other) => other.name === flag.needs)!;
    if (parsed.flagsByKey[needed.key!] !== undefined || valueAt(file, needed.key!) !== undefined)
      continue;
    throw new ArgumentError("serve", `--${flag.name} needs --${needed.name} too`);
  }
}

function valueAt(value: unknown, dotted: string): unknown {
  let current = value;
  for (const key of dotted.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * A flag's text as the type its config key wants: numbers as numbers when they are
 * numbers (else left as text, so validation says what is wrong), paths absolute.
 */
function converted(flag: ServeFlag, given: string | boolean | (string | boolean)[]): unknown {
  const value = Array.isArray(given) ? given.at(-1)! : given;
  if (typeof value === "boolean") return value;
  if (flag.path) return resolve(value);
  const type = schemaAt(ServerConfig, flag.key!.split("."))?.type;
  if ((type === "integer" || type === "number") && /^-?\d+(\.\d+)?(e\d+)?$/i.test(value.trim()))
    return Number(value);
  if (type === "boolean" && (value === "true" || value === "false")) return value === "true";
  return value;
}

function schemaAt(schema: TSchema, path: string[]): TSchema | undefined {
  let current: TSchema | undefined = schema;
  for (const segment of path) {
    current = (current?.properties as Record<string, TSchema> | undefined)?.[segment];
  }
  return current;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split(".");
  let current = target;
  for (const segment of segments.slice(0, -1)) {
    current[segment] ??= {};
    current = current[segment] as Record<string, unknown>;
  }
  current[segments.at(-1)!] = value;
}
