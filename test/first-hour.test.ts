/**
 * A newcomer's first hour, as they would live it: `npx labthings-ts` inside the clone
 * (no rebuild), then `labthings-ts init` into a new folder, `npm install` there of this
 * working tree (packed as npm would publish it, so the package's file list is tested
 * too; everything else from the local npm cache or the registry), the new project's
 * `npm test`, and a short `npm start` that answers HTTP and stops on SIGTERM. The
 * phases' times are printed (the figures in docs/development.md come from here).
 *
 * Runs `dist/`: `npm test` builds first; run `npm run build` before this file alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  CLI,
  killAll,
  runCli,
  runProcess,
  trackChild,
} from "./support/cli-process.js";
import { freePort } from "./support/mosquitto.js";
import { pollUntil } from "./support/processes.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { deferred, within } from "./support/within.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
/** npm may fetch what its cache lacks: allow a slow registry. */
const NPM_MS = 180_000;

/**
 * The environment without npm's own variables: `npm test` sets npm_config_* (the
 * project's prefix among them), which would make a nested npm work on this project.
 */
function cleanEnvironment(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !/^npm_/i.test(entry[0]) && entry[0] !== "INIT_CWD",
    ),
  );
}

interface Run {
  code: number | null;
  stdout: string;
  /** stdout and stderr, one after the other. */
  output: string;
  ms: number;
}

/** Run a command to its end in `cwd` (npm's own variables removed), bounded. */
async function run(command: string, args: string[], cwd: string, ms = NPM_MS): Promise<Run> {
  const env = { ...cleanEnvironment(), NO_COLOR: "1", CI: "1" };
  const { code, stdout, stderr, ms: took } = await runProcess(command, args, { cwd, env, ms });
  return { code, stdout, output: `${stdout}${stderr}`, ms: took };
}

let work: string;

beforeAll(async () => {
  assertBuilt();
  work = await tempDir("labthings-first-hour-");
});
afterEach(killAll);
afterAll(removeTempDirs);

describe("the CLI inside the clone", () => {
  it("npx labthings-ts runs the built CLI without rebuilding it", async () => {
    const before = (await stat(CLI)).mtimeMs;
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      version: string;
    };
    const result = await run("npx", ["labthings-ts", "--version"], ROOT);
    expect(result.code, result.output).toBe(0);
    expect(result.output.trim().split("\n").at(-1)).toBe(version);
    expect((await stat(CLI)).mtimeMs, "dist/ was rebuilt").toBe(before);
    console.log(`npx labthings-ts --version in the clone: ${result.ms.toFixed(0)} ms`);
  });
});

describe("labthings-ts init", () => {
  it("refuses a folder that is not empty, and changes nothing in it", async () => {
    const folder = await tempDir("labthings-init-busy-");
    await writeFile(join(folder, "notes.txt"), "mine");
    const { code, stderr } = await runCli(["init", folder]);
    expect(code).toBe(2);
    expect(stderr).toContain("is not empty: give a new folder (nothing in it is changed)");
    expect(await readFile(join(folder, "notes.txt"), "utf8")).toBe("mine");
  });

  it("from a clone, the project depends on the clone's folder by default", async () => {
    const target = join(work, "linked-lab");
    const { code, stdout } = await runCli(["init", target]);
    expect(code, stdout).toBe(0);
    const pkg = JSON.parse(await readFile(join(target, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies["labthings-ts"]).toBe(`file:${relative(target, ROOT)}`);
  });

  it("makes a project whose npm install, npm test and npm start work at once", {
    timeout: 3 * NPM_MS,
  }, async () => {
    const started = performance.now();
    // The working tree as npm would publish it (runs `prepare`: an up-to-date build).
    const packed = await run("npm", ["pack", "--pack-destination", work], ROOT);
    expect(packed.code, packed.output).toBe(0);
    const tarball = join(work, packed.stdout.trim().split("\n").at(-1)!);
    expect(existsSync(tarball), `npm pack wrote ${tarball}`).toBe(true);

    const project = join(work, "my-lab");
    const made = await runCli(["init", project, "--from", tarball]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain("npm install");
    expect(made.stdout).toContain("npm start");

    const install = await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund"],
      project,
    );
    expect(install.code, install.output).toBe(0);
    // Item 9 of issue 16: no engine warning (cookie@2), no unreviewed install scripts.
    expect(install.output).not.toMatch(/EBADENGINE|install-scripts|npm warn/i);

    const test = await run("npm", ["test"], project);
    expect(test.code, test.output).toBe(0);
    expect(test.output).toMatch(/Tests\s+4 passed/);

    const start = await startProject(project);
    const td = await fetch(`${start.url}/lamp/`);
    expect(td.status).toBe(200);
    expect(((await td.json()) as { title: string }).title).toBe("Lamp");
    expect((await fetch(`${start.url}/`)).status).toBe(200);
    const stop = performance.now();
    // As a terminal's Ctrl-C or a service manager: the signal goes to the process group.
    process.kill(-start.child.pid!, "SIGTERM");
    await within(start.closed, "npm start to end after SIGTERM");
    // npm itself ends by the signal; the server must have shut down cleanly, and nothing
    // of the group may be left running.
    expect(start.output()).toContain('"msg":"shut down cleanly"');
    await within(groupGone(start.child.pid!), "every process of npm start's group to end");
    const stopMs = performance.now() - stop;

    // `npm run dev`: an edit of the Thing is served after a clean restart, without a hand
    // (on a port of its own: with --port 0 the restarted server would pick another).
    const dev = await startProject(project, "dev", await freePort());
    const lamp = join(project, "src/lamp.ts");
    const source = await readFile(lamp, "utf8");
    await writeFile(
      lamp,
      source.replace(
        "  accessor brightness = 0.5;\n",
        "  accessor brightness = 0.5;\n\n  @property({ schema: Type.Number(), readOnly: true }) accessor watts = 7;\n",
      ),
    );
    const watts = async () => {
      try {
        const response = await fetch(`${dev.url}/lamp/watts`);
        return response.status === 200 ? ((await response.json()) as number) : undefined;
      } catch {
        return undefined; // restarting
      }
    };
    await pollUntil(
      async () => ((await watts()) === 7 ? true : undefined),
      "the edited Lamp to be served by npm run dev",
      30_000,
    );
    expect(dev.output()).toContain('"msg":"shut down cleanly"');
    process.kill(-dev.child.pid!, "SIGTERM");
    await within(dev.closed, "npm run dev to end after SIGTERM");
    await within(groupGone(dev.child.pid!), "every process of npm run dev's group to end");
    console.log(
      `init → green: pack ${packed.ms.toFixed(0)} ms, npm install ${install.ms.toFixed(0)} ms, ` +
        `npm test ${test.ms.toFixed(0)} ms, npm start → listening ${start.ms.toFixed(0)} ms, ` +
        `SIGTERM → exit ${stopMs.toFixed(0)} ms; ` +
        `all ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});

/** Resolves once no process of the group `pgid` is left (signal 0 finds none). */
async function groupGone(pgid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `npm run <script> -- --port N` in its own process group; resolves once it listens. */
async function startProject(
  project: string,
  script = "start",
  port = 0,
): Promise<{
  child: ChildProcess;
  url: string;
  ms: number;
  output: () => string;
  closed: Promise<number | null>;
}> {
  const started = performance.now();
  const child = spawn("npm", ["run", script, "--", "--port", String(port)], {
    cwd: project,
    env: { ...cleanEnvironment(), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  trackChild(child);
  let output = "";
  const listening = deferred<string>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    output += `${line}\n`;
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(line)?.[1];
    if (url && line.includes('"msg":"listening on')) listening.resolve(url);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const closed = new Promise<number | null>((resolve) => child.once("close", resolve));
  const early = closed.then((code) => {
    throw new Error(`npm run ${script} ended (${code}) before listening:\n${output}`);
  });
  const url = await within(Promise.race([listening.promise, early]), `npm run ${script} to listen`);
  return { child, url, ms: performance.now() - started, output: () => output, closed };
}
