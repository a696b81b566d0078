import { register } from "node:module";
import { extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { TSchema } from "@sinclair/typebox";
import { ConfigError, ThingLifecycleError } from "../errors.js";
import { SchemaValidator } from "../model/schema-validator.js";
import { isThing, type Thing } from "../model/thing.js";
import { errorMessage } from "../runtime/settle.js";
import type { ThingEntry } from "../runtime/thing-registry.js";
import { configProblems } from "./config-problems.js";
import type { ServerConfig } from "./config-schema.js";
import { resolveConfigPath } from "./load-config.js";

const TYPESCRIPT = new Set([".ts", ".mts", ".cts", ".tsx"]);

type ThingConstructor = (new (options?: unknown) => Thing) & { options?: TSchema };

/**
 * This package's own entry points, resolved inside the running copy (its source under
 * tsx, or `dist/`): a config naming `labthings-ts/instruments#FfmpegCamera` works from
 * any directory, installed or not, and gets the very classes the server itself uses (a
 * second copy would fail its class checks).
 */
const OWN_ENTRY_POINTS: Record<string, string> = {
  "labthings-ts": "../index",
  "labthings-ts/instruments": "../instruments/index",
  "labthings-ts/microscope": "../../examples/microscope/index",
  "labthings-ts/client": "../client/index",
};
const OWN_EXTENSION = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

/** Where a class comes from: a module specifier (file URL or package name) and an export. */
export function parseClassSpec(
  spec: string,
  baseDir: string,
): { specifier: string; exportName: string } {
  const hash = spec.lastIndexOf("#");
  const path = hash >= 0 ? spec.slice(0, hash) : spec;
  const exportName = hash >= 0 ? spec.slice(hash + 1) : "default";
  const isFile = path.startsWith(".") || path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path);
  const own = OWN_ENTRY_POINTS[path];
  const specifier = own
    ? new URL(`${own}${OWN_EXTENSION}`, import.meta.url).href
    : path.startsWith("file:")
      ? path
      : isFile
        ? pathToFileURL(resolveConfigPath(baseDir, path)).href
        : path;
  return { specifier, exportName: exportName || "default" };
}

let typescriptLoader: Promise<unknown> | undefined;

/**
 * Loader hook: TypeScript Thing modules are ES modules, whatever the nearest
 * package.json says. Without it, a `.ts` file in a folder with no `"type": "module"`
 * would be loaded as CommonJS and fail on its own `import` statements.
 */
const TYPESCRIPT_AS_ESM = `export async function load(url, context, nextLoad) {
  if (url.startsWith("file:") && /\\.(ts|tsx|mts)$/.test(new URL(url).pathname)) {
    return nextLoad(url, { ...context, format: "module" });
  }
  return nextLoad(url, context);
}`;

async function registerTypeScriptLoader(): Promise<void> {
  const tsx = await import("tsx/esm/api");
  tsx.register();
  // Registered after tsx, so it runs first and hands tsx the format.
  register(`data:text/javascript,${encodeURIComponent(TYPESCRIPT_AS_ESM)}`);
}

/** Import a module, TypeScript included (tsx's loader is registered on first need). */
async function importModule(specifier: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.has(extname(new URL(specifier, "file:///").pathname))) {
    typescriptLoader ??= registerTypeScriptLoader();
    await typescriptLoader;
  }
  return (await import(specifier)) as Record<string, unknown>;
}

/**
 * Construct the configured Things: import each class, check its options against the
 * class's `static options` schema, and call the constructor. Any failure names the Thing.
 */
export async function loadThings(config: ServerConfig, baseDir: string): Promise<ThingEntry[]> {
  const validator = new SchemaValidator();
  const entries: ThingEntry[] = [];
  for (const [name, raw] of Object.entries(config.things)) {
    const spec = typeof raw === "string" ? { class: raw } : raw;
    const { specifier, exportName } = parseClassSpec(spec.class, baseDir);
    let module: Record<string, unknown>;
    try {
      module = await importModule(specifier);
    } catch (error) {
      throw new ThingLifecycleError(name, "load", importFailure(spec.class, specifier, error), {
        cause: error,
      });
    }
    const cls = module[exportName] as ThingConstructor | undefined;
    if (typeof cls !== "function" || !isThing(cls.prototype)) {
      const found = Object.keys(module).join(", ") || "nothing";
      throw new ThingLifecycleError(
        name,
        "load",
        `${specifier} exports no Thing class '${exportName}' (it exports ${found})`,
      );
    }
    const options = spec.options ?? {};
    if (cls.options) {
      const problems = configProblems(validator, cls.options, options, ["things", name, "options"]);
      if (problems.length > 0) throw new ConfigError(problems);
    }
    let thing: Thing;
    try {
      thing = new cls(options);
    } catch (error) {
      throw new ThingLifecycleError(name, "load", `its constructor threw: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    entries.push({
      name,
      thing,
      slots: spec.slots,
      settings: { initial: spec.settings, locked: spec.lockedSettings },
      ...(spec.id === undefined ? {} : { id: spec.id }),
    });
  }
  return entries;
}

/**
 * Why a Thing's module did not import, in one line a person can act on: a missing file
 * or package named as the config wrote it, a syntax error with its place, anything else
 * with the first line of its message and the place in the module it came from. The full
 * error stays the cause (the CLI prints its stack at `--log-level debug`).
 */
function importFailure(written: string, specifier: string, error: unknown): string {
  const { code, message = String(error), stack = "" } = error as NodeJS.ErrnoException;
  const module = written.split("#")[0]!;
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
    const missing = /Cannot find (?:module|package) '([^']+)'/.exec(message)?.[1];
    if (
      specifier.startsWith("file:") &&
      (!missing || specifier.endsWith(missing.split("/").pop()!))
    )
      return `${module} does not exist (looked for ${fileURLToPath(specifier)})`;
    if (missing && !missing.startsWith("/") && !missing.startsWith("file:"))
      return `${module} imports '${missing}', which is not installed (npm install ${missing})`;
    return `${module}: ${firstLine(message).replace(/ imported from .*$/, "")}`;
  }
  // esbuild (through tsx): "Transform failed with 1 error:\n/path/x.ts:3:10: ERROR: …"
  const transform = /^(\S+:\d+:\d+): ERROR: (.*)$/m.exec(message);
  if (transform) return `${module} does not compile: ${transform[2]} (${transform[1]})`;
  const place = stack
    .split("\n")
    .find(
      (line) =>
        specifier.startsWith("file:") &&
        (line.includes(specifier) || line.includes(fileURLToPath(specifier))),
    );
  const location = place && /((?:file:\/\/)?\/[^\s()]+:\d+:\d+)/.exec(place)?.[1];
  const at = location ? ` (at ${location.replace(/^file:\/\//, "")})` : "";
  return `${module} failed while importing: ${firstLine(message)}${at}`;
}

const firstLine = (text: string) => text.split("\n").find((line) => line.trim() !== "") ?? text;
