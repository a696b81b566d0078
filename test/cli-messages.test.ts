/**
 * What a newcomer reads when something is wrong, and when all is well, from the built
 * command line as a real child process: a mistake in the arguments or the config (every
 * one at once, in file order, enums with their values, flags named as flags), a port in
 * use, a Thing module that does not load (one line; the stack at --log-level debug), a
 * `call` value that is not JSON, no command at all; and the quiet log of a clean run
 * (one start line naming the dashboard and /docs, one line for a clean shutdown).
 *
 * Runs `dist/`: `npm test` builds first; run `npm run build` before this file alone.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  CLI,
  FRAMEWORK,
  killAll,
  runCli,
  STAGE,
  trackChild,
} from "./support/cli-process.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { deferred, within } from "./support/within.js";

let dir: string;

async function config(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** A stack trace's frames: what a newcomer should not be shown by default. */
const STACK_FRAME = /\n\s+at .+:\d+:\d+/;

beforeAll(async () => {
  assertBuilt();
  dir = await tempDir("labthings-messages-");
});
afterEach(killAll);
afterAll(removeTempDirs);

describe("mistakes in the command line", () => {
  it("no command: the usage on stderr and exit 2 (a script that lost its arguments fails)", async () => {
    const { code, stdout, stderr } = await runCli([]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("Usage: labthings-ts <command>");
    expect(stderr).toContain("serve");
  });

  it("a misspelt command: the nearest real one, then the usage, exit 2", async () => {
    const { code, stderr } = await runCli(["srve", "--port", "0"]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe(
      "labthings-ts: unknown command 'srve' (did you mean serve?)",
    );
    expect(stderr).toContain("Usage: labthings-ts <command>");
    const far = await runCli(["microscope"]);
    expect(far.stderr.split("\n")[0]).toBe("labthings-ts: unknown command 'microscope'");
  });

  it("an unknown flag is an unknown argument, with the nearest real one and a pointer to --help", async () => {
    const { code, stderr } = await runCli(["serve", "--prot", "5001"]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      "labthings-ts serve: unknown argument '--prot' (did you mean --port?)\n" +
        "Run 'labthings-ts serve --help' to see its arguments.\n",
    );
  });

  it("a flag without its value says so", async () => {
    const { code, stderr } = await runCli(["serve", "--port"]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe("labthings-ts serve: --port needs a value");
  });

  it("--tls-cert without --tls-key (and no key in the config file) names the missing flag", async () => {
    const { code, stderr } = await runCli(["serve", "--tls-cert", "cert.pem", "--port", "0"]);
    expect(code).toBe(2);
    expect(stderr.split("\n")[0]).toBe("labthings-ts serve: --tls-cert needs --tls-key too");
  });

  it("a flag's bad value is named by the flag; an enum lists its values", async () => {
    const format = await runCli(["serve", "--log-format", "xml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toBe(
      'labthings-ts: --log-format: must be one of "pretty", "json", not "xml"\n',
    );
    const port = await runCli(["serve", "--port", "fifty"]);
    expect(port.code).toBe(2);
    expect(port.stderr).toBe('labthings-ts: --port: must be a whole number, not "fifty"\n');
  });

  it("a value for `call` that is not JSON: says so and shows the quoting, without the whole usage", async () => {
    const { code, stderr } = await runCli(["call", "http://127.0.0.1:9/stage/", "speed", "fast"]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      "labthings-ts call: 'fast' is not JSON. A text value needs JSON quotes inside the shell's: '\"fast\"'\n" +
        "Run 'labthings-ts call --help' to see its arguments.\n",
    );
  });

  it("an object whose quotes the shell ate: shows the object quoted, not a text value", async () => {
    // `call … moveRelative {"x":1000,"y":-5}` without single quotes reaches us as this.
    const { code, stderr } = await runCli([
      "call",
      "http://127.0.0.1:9/stage/",
      "moveRelative",
      "{x:1000,y:-5}",
    ]);
    expect(code).toBe(2);
    const [first, ...rest] = stderr.split("\n");
    expect(first).toMatch(/^labthings-ts call: '\{x:1000,y:-5\}' is not JSON \(.+\)\. /);
    expect(first).toMatch(/: '\{"x":1000,"y":-5\}'$/);
    expect(rest).toEqual(["Run 'labthings-ts call --help' to see its arguments.", ""]);
    const broken = await runCli(["call", "http://127.0.0.1:9/stage/", "moveRelative", '{"x": 10']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).not.toContain(`'"{\\"x\\": 10"'`);
    expect(broken.stderr).toContain('for example \'{"x": 1000, "mode": "fast"}\'');
  });
});

describe("mistakes in the config file", () => {
  it("every mistake at once, in the order of the file, each with what was found", async () => {
    const path = await config(
      "many.json",
      `{
  "port": "5000",
  "logFormat": "xml",
  "limits": { "bodyBytes": 0, "streamsPerClinet": 3 },
  "prot": 1
}
`,
    );
    const { code, stderr } = await runCli(["serve", "--config", path]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `labthings-ts: ${path}: 6 mistakes\n` +
        '  port: must be a whole number, not "5000" (in quotes, so text)\n' +
        '  logFormat: must be one of "pretty", "json", not "xml"\n' +
        "  limits.bodyBytes: must be at least 1, not 0\n" +
        "  limits.streamsPerClinet: unknown key (did you mean 'streamsPerClient'?)\n" +
        "  prot: unknown key (did you mean 'port'?)\n" +
        "  things: is missing (it is required)\n",
    );
  });

  it("a flag that overrides a bad key is named by the flag, the file's own keys by key", async () => {
    const path = await config("flag.json", `{ "things": { "stage": "${STAGE}" }, "port": -1 }`);
    const { code, stderr } = await runCli(["serve", "--config", path, "--shutdown-timeout", "0"]);
    expect(code).toBe(2);
    expect(stderr).toContain("  port: must be at least 0, not -1\n");
    expect(stderr).toContain("  --shutdown-timeout: must be at least 1, not 0\n");
  });

  it("a number too large to be finite is named by its key, beside the other mistakes", async () => {
    const path = await config(
      "huge.json",
      `{ "things": { "stage": "${STAGE}" }, "limits": { "urlBytes": 1e400 }, "port": -1 }`,
    );
    const { code, stderr } = await runCli(["serve", "--config", path]);
    expect(code).toBe(2);
    expect(stderr).toBe(
      `labthings-ts: ${path}: 2 mistakes\n` +
        "  limits.urlBytes: is too large a number (JSON reads it as infinity)\n" +
        "  port: must be at least 0, not -1\n",
    );
  });

  it("invalid JSON: the line and column", async () => {
    const path = await config(
      "broken.json",
      '{\n  "things": {},\n  "port": 5000\n  "host": "x"\n}\n',
    );
    const { code, stderr } = await runCli(["serve", "--config", path]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/is not valid JSON: .*\(line 4, column 3\)\n$/);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("failures at start", () => {
  let holder: Server;
  let takenPort: number;

  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    takenPort = (holder.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  it("a port in use: one line naming the port and the way out, exit 1", async () => {
    const { code, stdout, stderr } = await runCli(["serve", "--port", String(takenPort)], {
      env: { npm_lifecycle_event: "" }, // not run by an npm script (`npm test` sets it)
    });
    expect(code).toBe(1);
    expect(stderr).toBe(
      `labthings-ts: port ${takenPort} on 127.0.0.1 is already in use: stop what runs there, or choose another port: --port ${takenPort + 1} (or --port 0 for any free one; "port" in the config file)\n`,
    );
    expect(stdout).not.toMatch(/Server listening|listening on/);
  });

  it("a port in use under `npm start` or `npm run dev`: the flag as npm passes it", async () => {
    const args = ["serve", "--port", String(takenPort)];
    const start = await runCli(args, { env: { npm_lifecycle_event: "start" } });
    expect(start.stderr).toContain(`another port: npm start -- --port ${takenPort + 1} (or`);
    const dev = await runCli(args, { env: { npm_lifecycle_event: "dev" } });
    expect(dev.stderr).toContain(`another port: npm run dev -- --port ${takenPort + 1} (or`);
    const npx = await runCli(args, { env: { npm_lifecycle_event: "npx" } });
    expect(npx.stderr).toContain(`another port: --port ${takenPort + 1} (or`);
  });

  it("a Thing module that does not exist: one line naming the Thing and the file", async () => {
    const path = await config(
      "ghost.json",
      '{ "things": { "ghostCam": "./no-such-camera.ts#Cam" } }',
    );
    const { code, stderr } = await runCli(["serve", "--config", path, "--port", "0"]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `labthings-ts: Thing 'ghostCam' failed to load: ./no-such-camera.ts does not exist (looked for ${join(dir, "no-such-camera.ts")})\n`,
    );
  });

  it("a Thing module that fails while importing: one line with the place; the stack only at --log-level debug", async () => {
    await writeFile(
      join(dir, "faulty.ts"),
      `import { Thing } from ${JSON.stringify(FRAMEWORK)};\nconst calibration = undefined as unknown as { load(): void };\ncalibration.load();\nexport class Faulty extends Thing {}\n`,
    );
    const path = await config("faulty.json", '{ "things": { "faulty": "./faulty.ts#Faulty" } }');
    const plain = await runCli(["serve", "--config", path, "--port", "0"]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(
      /^labthings-ts: Thing 'faulty' failed to load: \.\/faulty\.ts failed while importing: Cannot read properties of undefined \(reading 'load'\) \(at .*faulty\.ts:3:\d+\)\n$/,
    );
    expect(plain.stderr).not.toMatch(STACK_FRAME);

    const debug = await runCli(["serve", "--config", path, "--port", "0", "--log-level", "debug"]);
    expect(debug.code).toBe(1);
    expect(debug.stderr.split("\n")[0]).toBe(plain.stderr.split("\n")[0]);
    expect(debug.stderr).toMatch(STACK_FRAME);
  });

  it("a Thing module with a syntax error: one line with the compiler's reason and place", async () => {
    await writeFile(join(dir, "typo.ts"), "export class Typo {\n  brightness = ;\n}\n");
    const path = await config("typo.json", '{ "things": { "typo": "./typo.ts#Typo" } }');
    const { code, stderr } = await runCli(["serve", "--config", path, "--port", "0"]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^labthings-ts: Thing 'typo' failed to load: \.\/typo\.ts does not compile: .+ \(.*typo\.ts:2:\d+\)\n$/,
    );
  });
});

/**
 * `serve` with pretty output until it listens, `whileServing(startLine)`, then SIGINT:
 * every line it printed, its exit code and stderr.
 */
async function prettyRun(
  args: string[],
  whileServing: (startLine: string) => Promise<void> = async () => {},
): Promise<{ lines: string[]; code: number | null; stderr: string }> {
  const child = spawn(
    process.execPath,
    [CLI, "serve", "--port", "0", "--log-format", "pretty", ...args],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  trackChild(child);
  const lines: string[] = [];
  const started = deferred<string>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    if (line.includes("listening on")) started.resolve(line);
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const closed = new Promise<number | null>((resolve) => child.once("close", resolve));
  await whileServing(await within(started.promise, "the start line"));
  child.kill("SIGINT");
  const code = await within(closed, "the server to exit");
  return { lines, code, stderr };
}

describe("the log of a clean run, as a person at a terminal reads it (pretty)", () => {
  it("a Thing whose start() fails: one line each, the stack and fields only at --log-level debug", async () => {
    await writeFile(
      join(dir, "unplugged.ts"),
      `import { Thing } from ${JSON.stringify(FRAMEWORK)};\nexport class Unplugged extends Thing {\n  override async start() {\n    throw new Error("no camera on /dev/video0");\n  }\n}\n`,
    );
    const path = await config(
      "unplugged.json",
      `{ "things": { "stage": "${STAGE}", "cam": "./unplugged.ts#Unplugged" } }`,
    );
    const { lines } = await prettyRun(["--config", path]);
    const text = lines.join("\n");
    expect(lines.filter((l) => l.includes("ERROR:"))).toEqual([
      expect.stringMatching(
        /ERROR: Thing 'cam' failed to start: no camera on \/dev\/video0; it is not served, the other Things are$/,
      ),
      expect.stringMatching(
        /ERROR: serving without cam: failed to start \(their URLs answer 503\)$/,
      ),
    ]);
    expect(text).not.toMatch(STACK_FRAME);
    expect(lines).toHaveLength(4); // the two errors, listening, shut down

    const debug = (await prettyRun(["--config", path, "--log-level", "debug"])).lines.join("\n");
    expect(debug).toMatch(STACK_FRAME);
    expect(debug).toContain('"cam": "no camera on /dev/video0"');
  });

  it("one start line with the dashboard and /docs, no Fastify 'Server listening', one line for a clean shutdown", async () => {
    const { lines, code, stderr } = await prettyRun([], async (start) => {
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(start)?.[1];
      expect(url, start).toBeDefined();
      expect(start).toMatch(
        new RegExp(
          `INFO: listening on ${url}/ — open it for the dashboard; API docs at ${url}/docs$`,
        ),
      );
      expect((await fetch(`${url}/docs`)).status).toBe(200);
    });
    expect(code, stderr).toBe(0);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/INFO: shut down cleanly in \d+ ms \(SIGINT\)$/);
    expect(lines.join("\n")).not.toMatch(/Server listening|hungThings|\[\]/);
  });
});
