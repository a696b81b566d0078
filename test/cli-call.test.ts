/**
 * `labthings-ts call` as a real child process against a real `labthings-ts serve`
 * process (the simulated microscope): reading and writing properties, the server's
 * Problem Details on a refused value, an action's progress and log on stderr (one line
 * per update without a terminal, a redrawn bar on one), its output on stdout or in a
 * file, Ctrl-C cancelling the invocation on the server, and bearer tokens.
 *
 * Runs `dist/`: `npm test` builds first; run `npm run build` before this file alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionStatus } from "../src/index.js";
import {
  assertBuilt,
  CLI,
  type Cli,
  killAll,
  listeningUrl,
  startCli,
  trackChild,
} from "./support/cli-process.js";
import { Lamp } from "./support/dashboard-things.js";
import { getJson, putJson } from "./support/json-http.js";
import { serveDuringSuite } from "./support/suite-server.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { deferred, within } from "./support/within.js";

const TOKEN = "call-test-token-0123456789abcdef";

interface Position {
  x: number;
  y: number;
  z: number;
}

interface CallRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code once the process has exited and its output is read. */
  finished: Promise<number | null>;
  /** Resolves once stderr (so far or to come) matches `pattern`; bounded. */
  stderrMatches(pattern: RegExp, what: string): Promise<void>;
}

/** Run `labthings-ts call …args` (stdin closed, stdout and stderr pipes: no terminal). */
function runCall(args: string[], env: Record<string, string> = {}): CallRun {
  const child = spawn(process.execPath, [CLI, "call", ...args], {
    env: { ...process.env, NO_COLOR: "1", LABTHINGS_TOKEN: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child);
  let stdout = "";
  let stderr = "";
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    for (const watcher of [...watchers]) watcher();
  });
  const finished = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    finished: within(finished, `labthings-ts call ${args.join(" ")} to exit`),
    stderrMatches(pattern, what) {
      const { promise, resolve } = deferred();
      const check = () => {
        if (!pattern.test(stderr)) return;
        watchers.delete(check);
        resolve();
      };
      watchers.add(check);
      check();
      const early = finished.then(() => {
        if (!pattern.test(stderr))
          throw new Error(`call exited before ${what}; stderr:\n${stderr}`);
      });
      return within(Promise.race([promise, early]), what);
    },
  };
}

describe("labthings-ts call", () => {
  let server: Cli;
  let base: string;

  beforeAll(async () => {
    assertBuilt();
    server = startCli(["--port", "0"]);
    base = await listeningUrl(server);
  });

  afterAll(async () => {
    await killAll();
    await removeTempDirs();
  });

  const position = () => getJson<Position>(`${base}/stage/position`);

  it("reads a property (JSON on stdout) and writes one (checked over HTTP)", async () => {
    const read = runCall([`${base}/stage/`, "position"]);
    expect(await read.finished).toBe(0);
    expect(JSON.parse(read.stdout())).toEqual(await position());

    const write = runCall([`${base}/stage`, "speed", "5000"]); // no slash: found all the same
    expect(await write.finished, write.stderr()).toBe(0);
    expect(await getJson(`${base}/stage/speed`)).toBe(5000);
  });

  it("a refused value prints the Problem Details and exits 1; the value is unchanged", async () => {
    const write = runCall([`${base}/stage/`, "speed", "50000"]);
    expect(await write.finished).toBe(1);
    expect(write.stderr()).toContain(
      "400 Bad Request: invalid value for Thing 'stage': /speed must be <= 20000",
    );
    expect(write.stderr()).toContain("/speed: must be <= 20000");
    expect(write.stdout()).toBe("");
    expect(await getJson(`${base}/stage/speed`)).toBe(5000);

    const readOnly = runCall([`${base}/stage/`, "position", '{"x": 1}']);
    expect(await readOnly.finished).toBe(1);
    expect(readOnly.stderr()).toContain("property 'position' is read-only");

    const unknown = runCall([`${base}/stage/`, "teleport"]);
    expect(await unknown.finished).toBe(2);
    expect(unknown.stderr()).toContain("actions: moveRelative, moveAbsolute");

    const notJson = runCall([`${base}/stage/`, "speed", "fast"]);
    expect(await notJson.finished).toBe(2);
    expect(notJson.stderr()).toContain("'fast' is not JSON");
  });

  it("autofocus: one progress line per update and its log on stderr, the output on stdout", async () => {
    const run = runCall([`${base}/autofocus/`, "run", '{"range": 600, "steps": 5}']);
    expect(await run.finished, run.stderr()).toBe(0);
    const lines = run.stderr().trim().split("\n");
    const percents = lines
      .map((line) => /^autofocus\/run: running (\d+) %/.exec(line)?.[1])
      .filter((percent) => percent !== undefined)
      .map(Number);
    expect(percents.length, run.stderr()).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < percents.length; i++)
      expect(percents[i]).toBeGreaterThanOrEqual(percents[i - 1]!);
    expect(lines.at(-1)).toMatch(/^autofocus\/run: completed 100 % in focus at z=-?\d+$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}info: coarse sweep: best z=-?\d+$/));
    const output = JSON.parse(run.stdout()) as { z: number; sharpness: number };
    expect(output.z).toBe((await position()).z);
    expect(output.sharpness).toBeGreaterThan(0);
  });

  it("Ctrl-C cancels the invocation on the server and exits 130", async () => {
    expect((await putJson(`${base}/stage/speed`, 1000)).status).toBe(204);
    const start = await position();
    const run = runCall([`${base}/stage/`, "moveRelative", '{"x": 8000}']); // 8 s at 1000 steps/s
    await run.stderrMatches(/running [1-9]\d? %/, "the move to be under way");
    run.child.kill("SIGINT");
    expect(await run.finished).toBe(130);
    expect(run.stderr()).toMatch(/cancelled: the server reports invocation [\w-]+ cancelled/);
    expect(run.stdout()).toBe("");
    const [latest] = await getJson<ActionStatus[]>(`${base}/stage/moveRelative`);
    expect(latest!.status).toBe("cancelled");
    const stopped = await position();
    expect(stopped.x - start.x).toBeGreaterThan(0);
    expect(stopped.x - start.x).toBeLessThan(8000);
    expect((await putJson(`${base}/stage/speed`, 20_000)).status).toBe(204);
  });

  it("-o saves a blob output (the camera's capture) to a file", async () => {
    const file = join(await tempDir("labthings-call-"), "still.jpg");
    const run = runCall([`${base}/camera/`, "capture", "-o", file]);
    expect(await run.finished, run.stderr()).toBe(0);
    expect(run.stderr()).toMatch(/saved \d+ bytes \(image\/jpeg\) to /);
    const metadata = await sharp(await readFile(file)).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual(["jpeg", 640, 480]);
  });

  it("on a terminal the progress is one bar redrawn in place", async () => {
    expect((await putJson(`${base}/stage/speed`, 2000)).status).toBe(204); // 0.75 s
    // script(1) gives the command a pseudo-terminal and copies what it writes.
    const command = [
      process.execPath,
      CLI,
      "call",
      `${base}/stage/`,
      "moveRelative",
      "'{\"y\": 1500}'",
    ].join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      env: { ...process.env, LABTHINGS_TOKEN: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    trackChild(child);
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    const code = await within(
      new Promise<number | null>((resolve) => child.once("close", resolve)),
      "the call under script(1) to exit",
    );
    expect(code, output).toBe(0);
    const redraws = output.split("\r\x1b[2K").length - 1;
    expect(redraws, output).toBeGreaterThanOrEqual(2);
    expect(output).toMatch(/stage\/moveRelative \[#{24}\] 100 % completed/);
  });

  describe("with a bearer token", () => {
    const secured = serveDuringSuite(() => [{ name: "lamp", thing: new Lamp() }], {
      authToken: TOKEN,
    });

    it("without one: the server's 401 and exit 1; --token or LABTHINGS_TOKEN: read and invoke", async () => {
      const refused = runCall([`${secured.base}/lamp/`, "brightness"]);
      expect(await refused.finished).toBe(1);
      expect(refused.stderr()).toContain("401 Unauthorized: This server requires a bearer token");

      const flag = runCall([`${secured.base}/lamp/`, "brightness", "--token", TOKEN]);
      expect(await flag.finished, flag.stderr()).toBe(0);
      expect(JSON.parse(flag.stdout())).toBe(0.5);

      const fromEnv = runCall([`${secured.base}/lamp/`, "blink", '{"times": 2, "fast": true}'], {
        LABTHINGS_TOKEN: TOKEN,
      });
      expect(await fromEnv.finished, fromEnv.stderr()).toBe(0);
      expect(JSON.parse(fromEnv.stdout())).toEqual({ blinked: 2, colour: "white" });
      expect(fromEnv.stderr()).toContain("  info: blink 2");
    });
  });
});
