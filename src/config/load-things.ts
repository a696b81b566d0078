import { register } from "node:module";
import { extname } from "node:path";
import { pathToFileURL } from "node:url";
import type { TSchema } from "@sinclair/typebox";
import { ConfigError, ThingLifecycleError } from "../errors.js";
import { describeFieldErrors, SchemaValidator } from "../model/schema-validator.js";
import { isThing, type Thing } from "../model/thing.js";
import { errorMessage } from "../runtime/settle.js";
import type { ThingEntry } from "../runtime/thing-registry.js";
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
      throw new ThingLifecycleError(
        name,
        "load",
        `cannot import ${specifier}: ${errorMessage(error)}`,
        { cause: error },
      );
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
      const errors = validator.check(cls.options, options, "");
      if (errors.length > 0) {
        const first = errors[0]!;
        const key = ["things", name, "options", ...first.field.split("/").filter(Boolean)].join(
          ".",
        );
        throw new ConfigError(key, `${first.message} (${describeFieldErrors(errors)})`);
      }
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
