import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { SchemaValidator } from "../model/schema-validator.js";
import { AS_TEXT, configProblems } from "./config-problems.js";
import { ServerConfig } from "./config-schema.js";

/** A validated config, with the folder its relative paths resolve against. */
export interface LoadedConfig {
  config: ServerConfig;
  /** Folder of the config file; relative module paths and `settingsDir` resolve against it. */
  baseDir: string;
}

/** Read and validate a JSON config file. Every mistake is named in one ConfigError. */
export async function readConfigFile(
  path: string,
  options: Omit<ValidateOptions, "source"> = {},
): Promise<LoadedConfig> {
  const { raw, baseDir, source } = await readConfigJson(path);
  return { config: validateConfig(raw, { ...options, source }), baseDir };
}

/** Read a config file as JSON, not yet validated (flags may still be laid over it). */
export async function readConfigJson(
  path: string,
): Promise<{ raw: unknown; baseDir: string; source: string }> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : (code ?? String(error));
    throw new ConfigError("", `cannot read ${absolute}: ${why}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("", `${absolute} is not valid JSON: ${jsonErrorAt(text, error)}`);
  }
  return { raw: parsed, baseDir: dirname(absolute), source: path };
}

export interface ValidateOptions {
  /** Where the config came from (a file name), for the message. */
  source?: string;
  /** Config key (dotted) → the flag that set it: its mistakes are named by the flag. */
  flags?: Readonly<Record<string, string>>;
  /** The file's own content, when flags were laid over it: its mistakes are reported too. */
  file?: unknown;
}

/** Check a config object against the schema; the error names every wrong key, in file order. */
export function validateConfig(value: unknown, options: ValidateOptions = {}): ServerConfig {
  const validator = new SchemaValidator();
  const problems = configProblems(validator, ServerConfig, value);
  const flags = Object.entries(options.flags ?? {});
  const flagFor = (key: string) =>
    flags.find(([flagKey]) => key === flagKey || key.startsWith(`${flagKey}.`))?.[1];
  const byFlags = problems.flatMap((problem) => {
    const flag = flagFor(problem.key);
    // A flag's value is always text: no point saying it was quoted.
    return flag ? [{ ...problem, reason: problem.reason.replace(` ${AS_TEXT}`, ""), flag }] : [];
  });
  // The file's own mistakes count even where a flag overrides the key: it is still wrong.
  const fromFile =
    options.file === undefined
      ? problems.filter((problem) => !flagFor(problem.key))
      : configProblems(validator, ServerConfig, options.file);
  const all = [...fromFile, ...byFlags];
  if (all.length === 0) return value as ServerConfig;
  throw new ConfigError(all, "", options.source);
}

/** JSON.parse's complaint with the line and column of its position, when it gives one. */
function jsonErrorAt(text: string, error: unknown): string {
  const message = (error as Error).message.replace(/ in JSON at position \d+.*$/, "");
  const position = /at position (\d+)/.exec((error as Error).message)?.[1];
  if (position === undefined) return message;
  const before = text.slice(0, Number(position)).split("\n");
  return `${message} (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}

/** Resolve a path from the config against the config file's folder. */
export function resolveConfigPath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}
