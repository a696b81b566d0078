import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { SchemaValidator } from "../model/schema-validator.js";
import { ServerConfig } from "./config-schema.js";

/** A validated config, with the folder its relative paths resolve against. */
export interface LoadedConfig {
  config: ServerConfig;
  /** Folder of the config file; relative module paths and `settingsDir` resolve against it. */
  baseDir: string;
}

/** Read and validate a JSON config file. Every mistake is a ConfigError naming the key. */
export async function readConfigFile(path: string): Promise<LoadedConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    throw new ConfigError(
      "",
      `cannot read ${absolute}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError("", `${absolute} is not valid JSON: ${(error as Error).message}`);
  }
  return { config: validateConfig(parsed), baseDir: dirname(absolute) };
}

/** Check a config object against the schema; the error names the first wrong key. */
export function validateConfig(value: unknown): ServerConfig {
  const errors = new SchemaValidator().check(ServerConfig, value, "");
  if (errors.length === 0) return value as ServerConfig;
  // A union reports a mismatch against every branch; the deepest error is the useful one.
  const meaningful = errors.filter((e) => e.rule !== "anyOf");
  const deepest = meaningful.reduce(
    (best, e) => (depth(e.field) > depth(best.field) ? e : best),
    meaningful[0]!,
  );
  const key = deepest.field.split("/").filter(Boolean).join(".");
  const reason =
    deepest.rule === "additionalProperties"
      ? "unknown key"
      : deepest.rule === "required"
        ? "is required"
        : deepest.message;
  throw new ConfigError(key, reason);
}

const depth = (pointer: string) => pointer.split("/").length;

/** Resolve a path from the config against the config file's folder. */
export function resolveConfigPath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}
