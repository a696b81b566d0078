/**
 * The code in README.md and docs/ cannot rot. Every TypeScript or JavaScript block is
 * either a copy of a real file (or of a `// #region name` of one), marked just above it
 *
 *     <!-- file: templates/init/src/lamp.ts -->
 *     <!-- file: docs/examples/microscope.ts#things -->
 *
 * and the copy must equal the file, or it says why it is not checked:
 *
 *     <!-- not checked: the module client-gen writes -->
 *
 * A block with neither fails here, naming its page and line. The files are type-checked
 * by `npm run lint` (docs/examples and examples/ by tsconfig.json, templates/ by their
 * own tsconfig) and run below or by the `init` test. A JSON block marked
 * `<!-- config -->` must be a valid config file. Every flag of `labthings-ts serve` must
 * appear in docs/configuration.md.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Camera, Stage } from "../docs/examples/microscope.js";
import { SERVE_FLAGS } from "../src/cli/serve-flags.js";
import { validateConfig } from "../src/config/load-config.js";
import { ThingServer } from "../src/index.js";
import { within } from "./support/within.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CODE = new Set(["ts", "typescript", "tsx", "js", "javascript", "mjs"]);

interface Block {
  page: string;
  line: number;
  language: string;
  text: string;
  /** The HTML comment on the line above the opening fence (blank lines skipped), if any. */
  marker: string | undefined;
}

function pages(): string[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs];
}

function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), "utf8").split("\n");
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const end = lines.findIndex((line, j) => j > i && /^\s*```\s*$/.test(line));
    let above = i - 1;
    while (above >= 0 && lines[above]!.trim() === "") above--;
    const comment = above >= 0 ? /^\s*<!--\s*(.*?)\s*-->\s*$/.exec(lines[above]!) : null;
    found.push({
      page,
      line: i + 1,
      language: open[2]!,
      text: lines
        .slice(i + 1, end)
        .map((line) => line.slice(indent))
        .join("\n"),
      marker: comment?.[1],
    });
    i = end;
  }
  return found;
}

/** A file, or its `// #region name` … `// #endregion` part without nested markers, dedented. */
function source(reference: string): string {
  const [path, region] = reference.split("#");
  const text = readFileSync(join(ROOT, path!), "utf8");
  const withoutMarkers = (lines: string[]) =>
    lines.filter((line) => !/^\s*\/\/ #(end)?region\b/.test(line));
  if (!region) return withoutMarkers(text.split("\n")).join("\n");
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === `// #region ${region}`);
  if (start < 0) throw new Error(`${path} has no '// #region ${region}'`);
  let depth = 0;
  let end = start + 1;
  for (; end < lines.length; end++) {
    if (/^\s*\/\/ #region\b/.test(lines[end]!)) depth++;
    if (/^\s*\/\/ #endregion\b/.test(lines[end]!)) {
      if (depth === 0) break;
      depth--;
    }
  }
  const body = withoutMarkers(lines.slice(start + 1, end));
  const indent = Math.min(
    ...body.filter((line) => line.trim()).map((line) => /^\s*/.exec(line)![0].length),
  );
  return body.map((line) => line.slice(indent)).join("\n");
}

const allBlocks = pages().flatMap(blocks);
const codeBlocks = allBlocks.filter((block) => CODE.has(block.language));

describe("the code in README.md and docs/", () => {
  it("finds the pages and their code (the check sees them)", () => {
    expect(pages()).toContain("docs/guide.md");
    expect(codeBlocks.some((block) => block.page === "README.md")).toBe(true);
  });

  it("marks every code block as a copy of a file, or says why it is not checked", () => {
    const unmarked = codeBlocks
      .filter((block) => !/^(file: \S+|not checked: \S.*)$/.test(block.marker ?? ""))
      .map((block) => `${block.page}:${block.line} (\`\`\`${block.language})`);
    expect(unmarked, "add <!-- file: path#region --> or <!-- not checked: why -->").toEqual([]);
  });

  it("each copy equals its file or region", () => {
    const stale = codeBlocks
      .filter((block) => block.marker?.startsWith("file: "))
      .filter((block) => block.text.trim() !== source(block.marker!.slice(6)).trim())
      .map((block) => `${block.page}:${block.line} differs from ${block.marker!.slice(6)}`);
    expect(stale).toEqual([]);
  });

  it("each config block is a valid config", () => {
    const configs = allBlocks.filter((block) => block.marker === "config");
    expect(configs.length).toBeGreaterThan(0);
    for (const block of configs) {
      expect(
        () => validateConfig(JSON.parse(block.text)),
        `${block.page}:${block.line}`,
      ).not.toThrow();
    }
  });

  it("docs/configuration.md names every flag of labthings-ts serve", () => {
    const page = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
    const missing = SERVE_FLAGS.filter((flag) => !page.includes(`--${flag.name}`)).map(
      (flag) => `--${flag.name}`,
    );
    expect(missing).toEqual([]);
  });
});

describe("the guide's microscope (docs/examples/microscope.ts) runs as written", () => {
  it("serves the stage and the camera; moveAbsolute reports progress and arrives", async () => {
    const server = new ThingServer(
      [
        { name: "stage", thing: new Stage() },
        { name: "camera", thing: new Camera() },
      ],
      { port: 0 },
    );
    const base = await server.start();
    try {
      const td = (await (await fetch(`${base}/camera/`)).json()) as { links: { href: string }[] };
      expect(td.links.map((link) => link.href)).toContain("stream");
      const created = await fetch(`${base}/stage/moveAbsolute`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ x: 5, z: -3 }),
      });
      expect(created.status).toBe(201);
      const href = created.headers.get("location")!;
      let status: { status: string; output?: unknown; progress?: { fraction?: number } };
      do {
        status = await (await fetch(new URL(href, base))).json();
      } while (status.status === "pending" || status.status === "running");
      expect(status).toMatchObject({
        status: "completed",
        output: { x: 5, y: 0, z: -3 },
        progress: { fraction: 1 },
      });
      const refused = await fetch(`${base}/stage/speed`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: "20001",
      });
      expect(refused.status).toBe(400);
    } finally {
      await within(server.close(), "the guide's server to close");
    }
  });
});
