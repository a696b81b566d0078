/**
 * The built command line (`dist/src/cli/main.js serve`) as a user runs it: real child
 * processes, JSON log lines on stdout, config files in temporary folders, signals.
 * `npm test` builds first (the `pretest` script); run `npm run build` before running
 * this file on its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { within } from "./support/within.js";

const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const CLI = join(DIST, "src/cli/main.js");
/** The built framework, imported by absolute path from Thing files outside the project. */
const FRAMEWORK = join(DIST, "src/index.js");
const STAGE = `${join(DIST, "examples/microscope/stage.js")}#SimulatedStage`;
const CAMERA = `${join(DIST, "examples/microscope/camera.js")}#SimulatedCamera`;

interface LogLine {
  msg?: string;
  url?: string;
  level?: number;
  [key: string]: unknown;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `labthings-ts` process: its parsed stdout, its stderr, and its exit. */
interface Cli {
  child: ChildProcess;
  lines: LogLine[];
  /** stdout lines that were not JSON. */
  rawLines: string[];
  stderr: () => string;
  /** Resolves once the process has exited and its output streams have closed. */
  closed: Promise<Exit>;
  waitForLog(predicate: (line: LogLine) => boolean, what: string): Promise<LogLine>;
}

const running = new Set<Cli>();

function startCli(args: string[], cwd: string = process.cwd()): Cli {
  const child = spawn(process.execPath, [CLI, "serve", "--log-format", "json", ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout! }).on("line", (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      rawLines.push(text);
      return;
    }
    lines.push(line);
    for (const listener of [...listeners]) listener(line);
  });
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  const cli: Cli = {
    child,
    lines,
    rawLines,
    stderr: () => stderr,
    closed,
    waitForLog(predicate, what) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return within(
        new Promise<LogLine>((resolve, reject) => {
          const listener = (line: LogLine) => {
            if (!predicate(line)) return;
            listeners.delete(listener);
            resolve(line);
          };
          listeners.add(listener);
          closed.then((exit) => {
            listeners.delete(listener);
            reject(
              new Error(
                `the CLI exited (${JSON.stringify(exit)}) before logging ${what}\nstderr:\n${stderr}`,
              ),
            );
          }, reject);
        }),
        what,
      );
    },
  };
  running.add(cli);
  closed.finally(() => running.delete(cli));
  return cli;
}

/** The "listening on …" line: its `url` is where the server answers. */
async function listeningUrl(cli: Cli): Promise<string> {
  const line = await cli.waitForLog(
    (l) => typeof l.msg === "string" && l.msg.startsWith("listening on") && "url" in l,
    "the 'listening on' log line",
  );
  expect(typeof line.url).toBe("string");
  return line.url as string;
}

/** Run the CLI to its end (it is expected to fail fast) and return its exit and stderr. */
async function runToExit(args: string[], cwd?: string): Promise<Exit & { stderr: string }> {
  const cli = startCli(args, cwd);
  const exit = await within(cli.closed, `the CLI (${args.join(" ")}) to exit`);
  return { ...exit, stderr: cli.stderr() };
}

afterEach(async () => {
  const children = [...running];
  for (const cli of children) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
  }
  await Promise.all(children.map((cli) => within(cli.closed, "a killed child to exit")));
});

/** A Thing in TypeScript with a decorated property, importing the built framework. */
const lampSource = `import { Thing, property, Type } from ${JSON.stringify(FRAMEWORK)};

export class Lamp extends Thing {
  static override title = "Lamp";

  @property({ schema: Type.Number({ minimum: 0, maximum: 1 }), title: "Brightness" })
  accessor brightness = 0.5;
}
`;

/** A Thing whose start() rejects, as when hardware cannot be opened. */
const brokenSource = `import { Thing } from ${JSON.stringify(FRAMEWORK)};

export class Broken extends Thing {
  async start() {
    throw new Error("interlock open: cannot arm the laser");
  }
}
`;

let configDir: string;
let workDir: string;

async function writeConfig(name: string, config: unknown): Promise<string> {
  const path = join(configDir, name);
  await writeFile(path, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  return path;
}

beforeAll(async () => {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} does not exist: run 'npm run build' first (npm test does it)`);
  }
  configDir = await mkdtemp(join(tmpdir(), "labthings-cli-config-"));
  workDir = await mkdtemp(join(tmpdir(), "labthings-cli-cwd-"));
  await writeFile(join(configDir, "lamp.ts"), lampSource);
  await writeFile(join(configDir, "lamp.mts"), lampSource);
  await writeFile(join(configDir, "broken.mjs"), brokenSource);
  // Decoys in the working directory: resolving against the cwd would load these and fail.
  const decoy = 'throw new Error("resolved against the working directory");\n';
  await writeFile(join(workDir, "lamp.ts"), decoy);
  await writeFile(join(workDir, "lamp.mts"), decoy);
  await mkdir(join(workDir, "sub"));
});

afterAll(async () => {
  await Promise.all(
    [configDir, workDir].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })),
  );
});

describe("labthings-ts serve", () => {
  it("--port 0 listens on a free port and serves the simulated microscope", async () => {
    const cli = startCli(["--port", "0"]);
    const url = await listeningUrl(cli);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(url).port);
    expect(port).toBeGreaterThan(0);

    const response = await fetch(`${url}/things/`);
    expect(response.status).toBe(200);
    const things = (await response.json()) as Record<string, string>;
    expect(Object.keys(things).sort()).toEqual(["autofocus", "camera", "stage"]);
    expect(things.camera).toBe(`${url}/camera/`);
    expect(cli.rawLines).toEqual([]);
  });

  it.each([
    ["lamp.ts", "a TypeScript module (.ts) in a folder without package.json"],
    ["lamp.mts", "an ES module in TypeScript (.mts)"],
  ])(
    "relative Thing paths resolve against the config file's folder, not the cwd: %s (%s)",
    async (file) => {
      const config = await writeConfig(`relative-${file}.json`, {
        things: { lamp: `./${file}#Lamp` },
      });
      const cli = startCli(["--config", config, "--port", "0"], join(workDir, "sub"));
      const url = await listeningUrl(cli);

      const things = (await (await fetch(`${url}/things/`)).json()) as Record<string, string>;
      expect(Object.keys(things)).toEqual(["lamp"]);
      const brightness = await fetch(`${url}/lamp/brightness`);
      expect(brightness.status).toBe(200);
      expect(await brightness.json()).toBe(0.5);
      const put = await fetch(`${url}/lamp/brightness`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: "0.8",
      });
      expect(put.status).toBe(204);
      expect(await (await fetch(`${url}/lamp/brightness`)).json()).toBe(0.8);
    },
  );

  it("flags override the config file (--port and --host)", async () => {
    const config = await writeConfig("override.json", {
      things: { stage: STAGE },
      port: 1,
      host: "localhost",
    });
    const cli = startCli(["--config", config, "--port", "0", "--host", "127.0.0.1"], workDir);
    const url = await listeningUrl(cli);
    const { hostname, port } = new URL(url);
    expect(hostname).toBe("127.0.0.1");
    expect(Number(port)).toBeGreaterThan(1);
    const response = await fetch(`${url}/things/`);
    expect(Object.keys((await response.json()) as object)).toEqual(["stage"]);
  });

  it.each([
    {
      name: "an unknown key",
      config: { things: { stage: STAGE }, prot: 5 },
      names: "prot",
    },
    {
      name: "a value of the wrong type",
      config: { things: { stage: STAGE }, port: "abc" },
      names: "port",
    },
    {
      name: "invalid JSON",
      config: '{ "things": { "stage": "x" }, ',
      names: "JSON",
    },
    {
      name: "Thing options that break the class's options schema",
      config: {
        things: { stage: STAGE, camera: { class: CAMERA, options: { width: 1 } } },
      },
      names: "things.camera.options.width",
    },
  ])(
    "a bad config ($name) exits with code 2 and names the key",
    async ({ name, config, names }) => {
      const path = await writeConfig(`bad-${name.replaceAll(/\W+/g, "-")}.json`, config);
      const { code, signal, stderr } = await runToExit(["--config", path, "--port", "0"], workDir);
      expect(signal).toBeNull();
      expect(code).toBe(2);
      expect(stderr).toContain(names);
      expect(stderr).not.toMatch(/\n\s+at /); // a message for a person, not a stack trace
    },
  );

  it("a Thing whose module does not exist: non-zero exit, stderr names the Thing", async () => {
    const path = await writeConfig("missing-module.json", {
      things: { stage: STAGE, ghostCam: "./no-such-module.mjs#Nothing" },
    });
    const { code, signal, stderr } = await runToExit(["--config", path, "--port", "0"], workDir);
    expect(signal).toBeNull();
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stderr).toContain("ghostCam");
    expect(stderr).toContain("no-such-module.mjs");
  });

  it("a Thing whose start() rejects: exit code 1, stderr names the Thing and the cause", async () => {
    const path = await writeConfig("failing-start.json", {
      things: { stage: STAGE, shutter: "./broken.mjs#Broken" },
    });
    const { code, signal, stderr } = await runToExit(["--config", path, "--port", "0"], workDir);
    expect(signal).toBeNull();
    expect(code).toBe(1);
    expect(stderr).toContain("shutter");
    expect(stderr).toContain("interlock open: cannot arm the laser");
  });

  it("SIGTERM shuts a running server down cleanly with exit code 0", async () => {
    const cli = startCli(["--port", "0"]);
    const url = await listeningUrl(cli);
    expect((await fetch(`${url}/camera/exposureTime`)).status).toBe(200);

    cli.child.kill("SIGTERM");
    const exit = await within(cli.closed, "the CLI to exit after SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(cli.lines.map((line) => line.msg)).toContain("shut down cleanly");
    const clean = cli.lines.find((line) => line.msg === "shut down cleanly");
    expect(clean).toMatchObject({ hungThings: [], failedThings: [], forced: false });
    expect(cli.rawLines).toEqual([]);
  });
});
