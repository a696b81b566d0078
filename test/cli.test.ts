/**
 * The built command line (`dist/src/cli/main.js serve`) as a user runs it: real child
 * processes, JSON log lines on stdout, config files in temporary folders, signals.
 * `npm test` builds first (the `pretest` script); run `npm run build` before running
 * this file on its own.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  CAMERA,
  type Exit,
  FRAMEWORK,
  killAll,
  listeningUrl,
  STAGE,
  startCli,
} from "./support/cli-process.js";
import { expectProblem } from "./support/problem.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

/** Run the CLI to its end (it is expected to fail fast) and return its exit and stderr. */
async function runToExit(args: string[], cwd?: string): Promise<Exit & { stderr: string }> {
  const cli = startCli(args, { cwd });
  const exit = await within(cli.closed, `the CLI (${args.join(" ")}) to exit`);
  return { ...exit, stderr: cli.stderr() };
}

afterEach(killAll);

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
  assertBuilt();
  configDir = await tempDir("labthings-cli-config-");
  workDir = await tempDir("labthings-cli-cwd-");
  await writeFile(join(configDir, "lamp.ts"), lampSource);
  await writeFile(join(configDir, "lamp.mts"), lampSource);
  await writeFile(join(configDir, "broken.mjs"), brokenSource);
  // Decoys in the working directory: resolving against the cwd would load these and fail.
  const decoy = 'throw new Error("resolved against the working directory");\n';
  await writeFile(join(workDir, "lamp.ts"), decoy);
  await writeFile(join(workDir, "lamp.mts"), decoy);
  await mkdir(join(workDir, "sub"));
});

afterAll(removeTempDirs);

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
      const cli = startCli(["--config", config, "--port", "0"], { cwd: join(workDir, "sub") });
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
    const cli = startCli(["--config", config, "--port", "0", "--host", "127.0.0.1"], {
      cwd: workDir,
    });
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

  it("a Thing whose start() rejects is set aside: the log names it and the cause, its URLs answer 503, the others work", async () => {
    const path = await writeConfig("failing-start.json", {
      things: { stage: STAGE, shutter: "./broken.mjs#Broken" },
    });
    const cli = startCli(["--config", path, "--port", "0"], { cwd: workDir });
    const url = await listeningUrl(cli);
    const logged = await cli.waitForLog(
      (line) => line.thing === "shutter" && /failed to start/.test(String(line.msg)),
      "the start failure in the log",
    );
    expect(String(logged.msg)).toContain("interlock open: cannot arm the laser");
    const problem = await expectProblem(await fetch(`${url}/shutter/`), 503);
    expect(problem.detail).toContain("interlock open: cannot arm the laser");
    await expectProblem(await fetch(`${url}/shutter/anything`), 503);
    expect(await (await fetch(`${url}/things/`)).json()).toEqual({ stage: `${url}/stage/` });
    expect((await fetch(`${url}/stage/speed`)).status).toBe(200);
    cli.signal("SIGTERM");
    expect((await within(cli.closed, "the CLI to exit")).code, cli.stderr()).toBe(0);
  });

  it("with --require-all a Thing whose start() rejects stops the server: exit code 1, stderr names the Thing and the cause", async () => {
    const path = await writeConfig("failing-start-strict.json", {
      things: { stage: STAGE, shutter: "./broken.mjs#Broken" },
    });
    const { code, signal, stderr } = await runToExit(
      ["--config", path, "--port", "0", "--require-all"],
      workDir,
    );
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
    expect(exit).toEqual({ code: 0, signal: null, at: expect.any(Number) });
    expect(cli.lines.map((line) => line.msg)).toContain("shut down cleanly");
    const clean = cli.lines.find((line) => line.msg === "shut down cleanly");
    expect(clean).toMatchObject({ hungThings: [], failedThings: [], forced: false });
    expect(cli.rawLines).toEqual([]);
  });
});
