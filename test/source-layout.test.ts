/**
 * The layers point one way (`docs/development.md`): no module of `src/` reaches itself
 * through its imports (type-only imports count: a circle of types is still a circle a
 * reader must untangle), the thing model (`src/model/`) knows nothing of the runtime,
 * the HTTP server or the CLI, and the client stays free of everything server-side (it
 * runs in browsers). The imports are read by TypeScript's own pre-processor.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Module (path relative to src/, e.g. `model/thing.ts`) → the src modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    const local = importedFiles
      .map((imported) => imported.fileName)
      .filter((name) => name.startsWith("."))
      .map((name) => relative(SRC, resolve(dirname(file), name.replace(/\.js$/, ".ts"))));
    graph.set(relative(SRC, file), local);
  }
  return graph;
}

/** Every import circle, each as the path that closes it (`a → b → a`). */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const done = new Set<string>();
  const visit = (module: string, path: string[]) => {
    const at = path.indexOf(module);
    if (at >= 0) {
      found.push([...path.slice(at), module].join(" → "));
      return;
    }
    if (done.has(module)) return;
    for (const next of graph.get(module) ?? []) visit(next, [...path, module]);
    done.add(module);
  };
  for (const module of graph.keys()) visit(module, []);
  return found;
}

describe("the source layout", () => {
  const graph = importGraph();

  it("reads the imports of every module (the check sees the real graph)", () => {
    expect(graph.get("model/event.ts")).toContain("model/thing.ts");
    expect(graph.get("http/thing-server.ts")).toContain("runtime/thing-registry.ts");
  });

  it("has no import circle", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("keeps the thing model free of the layers above it", () => {
    const outward = [...graph]
      .filter(([module]) => module.startsWith("model/"))
      .flatMap(([module, imports]) =>
        imports
          .filter((target) => !target.startsWith("model/") && target !== "errors.ts")
          .map((target) => `${module} → ${target}`),
      );
    expect(outward).toEqual([]);
  });

  it("keeps the client free of server code (it runs in browsers)", () => {
    const outward = [...graph]
      .filter(([module]) => module.startsWith("client/"))
      .flatMap(([module, imports]) =>
        imports
          .filter((target) => !target.startsWith("client/"))
          .map((target) => `${module} → ${target}`),
      );
    expect(outward).toEqual([]);
  });
});
