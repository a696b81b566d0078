/**
 * `labthings-ts client-gen`: the built command line generates typed client modules for
 * the simulated microscope's Things (from a live server's TD URL and from a TD file), and
 * for a TD full of awkward names and schema shapes. Each module is type-checked with the
 * TypeScript compiler against a usage file whose `@ts-expect-error` lines prove wrong
 * types are rejected (an unused one is itself an error), without Node's types (the
 * generated code must run in browsers too); then the usage runs (tsx) against the server.
 *
 * The modules live in a temporary folder outside the repository with a
 * `node_modules/labthings-ts` link back to it, so the default import `labthings-ts/client`
 * resolves as it would for a user (through package.json `exports`, i.e. to `dist/`).
 * Runs the built CLI: run `npm run build` before running this file on its own.
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ThingServer } from "../src/index.js";
import { assertBuilt, CLI, killAll, trackChild } from "./support/cli-process.js";
import { ClientBench } from "./support/client-test-things.js";
import { microscopeEntries, SMALL_CAMERA } from "./support/microscope.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const REPO = fileURLToPath(new URL("..", import.meta.url));
/** The client's source, for `--import` (TypeScript and tsx map `.js` to the `.ts` file). */
const CLIENT_SOURCE = join(REPO, "src/client/index.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a Node program (bounded) and collect its output. */
function runNode(args: string[], cwd = REPO): Promise<Run> {
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return within(
    new Promise<Run>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, stdout, stderr }));
    }),
    `node ${args.join(" ")}`,
  );
}

const clientGen = (...args: string[]) => runNode([CLI, "client-gen", ...args]);

/**
 * Type-check `files` (strict, ES modules, the DOM library but not Node's types); returns
 * the diagnostics as "file:line: message" lines.
 */
function typecheck(files: string[]): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts", "lib.dom.asynciterable.d.ts"],
    types: [],
    noUnusedLocals: true,
    exactOptionalPropertyTypes: false,
    skipLibCheck: false,
  });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    if (!diagnostic.file || diagnostic.start === undefined) return message;
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return `${diagnostic.file.fileName}:${line + 1}: ${message}`;
  });
}

let server: ThingServer;
let base: string;
let dir: string;

beforeAll(async () => {
  assertBuilt();
  server = new ThingServer(
    [
      ...microscopeEntries({ camera: SMALL_CAMERA, autofocus: true }),
      { name: "bench", thing: new ClientBench() },
    ],
    { port: 0 },
  );
  base = await server.start();
  dir = await tempDir("labthings-client-gen-");
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await mkdir(join(dir, "node_modules"));
  await symlink(REPO, join(dir, "node_modules", "labthings-ts"), "dir");
});

afterEach(killAll);

afterAll(async () => {
  await within(server.close(), "server.close()");
  await removeTempDirs();
});

describe("client-gen for the simulated microscope", () => {
  it("generates, type-checks and runs typed clients for stage, camera and autofocus", async () => {
    // The stage from a live URL (importing the client's source); the camera from a TD
    // file (default import, labthings-ts/client); autofocus with a chosen class name.
    const stage = await clientGen(
      `${base}/stage/`,
      "-o",
      join(dir, "stage-client.ts"),
      "--import",
      CLIENT_SOURCE,
    );
    expect(stage, stage.stderr).toMatchObject({ code: 0 });
    expect(stage.stderr).toContain("wrote");

    const cameraTd = await (await fetch(`${base}/camera/`)).text();
    await writeFile(join(dir, "camera-td.json"), cameraTd);
    const camera = await clientGen(
      join(dir, "camera-td.json"),
      "-o",
      join(dir, "camera-client.ts"),
    );
    expect(camera, camera.stderr).toMatchObject({ code: 0 });

    const autofocus = await clientGen(
      `${base}/autofocus/`,
      "--out",
      join(dir, "autofocus-client.ts"),
      "--name",
      "FocusClient",
      "--import",
      CLIENT_SOURCE,
    );
    expect(autofocus, autofocus.stderr).toMatchObject({ code: 0 });

    const stageSource = await readFile(join(dir, "stage-client.ts"), "utf8");
    expect(stageSource).toContain(`from ${JSON.stringify(CLIENT_SOURCE)};`);
    expect(stageSource).toContain("export class SimulatedStageClient");
    expect(stageSource).toContain("/** Position: Current position in motor steps. */");
    expect(stageSource).toMatch(/export interface Position \{/);
    // Identical schemas share one type.
    expect(stageSource).toContain("export type MoveRelativeOutput = Position;");
    expect(stageSource).toContain("readonly position: Position;");
    expect(stageSource).toContain("  speed: Speed;");
    const cameraSource = await readFile(join(dir, "camera-client.ts"), "utf8");
    expect(cameraSource).toContain('} from "labthings-ts/client";');
    expect(cameraSource).toContain('export type SimulatedCameraStreamName = "stream" | "preview";');
    expect(cameraSource).toContain(`from ${join(dir, "camera-td.json")}.`);

    await writeFile(join(dir, "usage.ts"), MICROSCOPE_USAGE);
    expect(typecheck([join(dir, "usage.ts")])).toEqual([]);

    await writeFile(
      join(dir, "run.ts"),
      'import { run } from "./usage.js";\n' +
        "console.log(JSON.stringify(await run(process.argv[2])));\n",
    );
    const ran = await runNode(["--import", "tsx", join(dir, "run.ts"), base]);
    expect(ran, ran.stderr).toMatchObject({ code: 0 });
    const result = JSON.parse(ran.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      movedBy: 250,
      speed: 20_000,
      captureFirstBytes: [0xff, 0xd8],
      snapshotFirstBytes: [0xff, 0xd8],
      gain: 2,
      focusOutputKeys: ["scores", "sharpness", "z"],
    });
  });
});

/**
 * Uses the generated microscope clients with their types. `typeErrors` is never called:
 * each of its lines must fail to type-check (else `@ts-expect-error` is itself an error).
 */
const MICROSCOPE_USAGE = `import { FocusClient, type RunOutput } from "./autofocus-client.js";
import { SimulatedCameraClient, type ColourGains } from "./camera-client.js";
import { type Position, SimulatedStageClient, type SimulatedStageProperties } from "./stage-client.js";

export async function run(base: string) {
  const stage = await SimulatedStageClient.connect(\`\${base}/stage/\`);
  await stage.writeSpeed(20000);
  const before: Position = await stage.readPosition();
  const move = await stage.moveRelative({ x: 250 });
  const after: Position = await move.result();
  const all: SimulatedStageProperties = await stage.readAllProperties();
  const speed: number = all.speed;

  const camera = await SimulatedCameraClient.connect(\`\${base}/camera/\`);
  await camera.writeAnalogGain(2);
  const gain: number = await camera.readAnalogGain();
  const gains: ColourGains = await camera.readColourGains();
  const capture = await camera.capture();
  const blob = await camera.downloadBlob(await capture.result());
  const snapshot: Uint8Array = await camera.snapshot("stream");

  const focus = await FocusClient.connect(\`\${base}/autofocus/\`);
  const sweep = await focus.run({ range: 400, steps: 5 });
  const output: RunOutput = await sweep.result();

  return {
    movedBy: after.x - before.x,
    speed,
    gain,
    redGain: gains.red,
    captureFirstBytes: [...blob.bytes.subarray(0, 2)],
    snapshotFirstBytes: [...snapshot.subarray(0, 2)],
    focusOutputKeys: Object.keys(output).sort(),
  };
}

export function typeErrors(stage: SimulatedStageClient, camera: SimulatedCameraClient, focus: FocusClient, all: SimulatedStageProperties, position: Position) {
  // @ts-expect-error speed is a number
  void stage.writeSpeed("fast");
  // @ts-expect-error x is a number of steps
  void stage.moveRelative({ x: "250" });
  // @ts-expect-error the input has no member w
  void stage.moveRelative({ w: 1 });
  // @ts-expect-error position is read-only: there is no writePosition
  void stage.writePosition(position);
  // @ts-expect-error readAllProperties' position is readonly
  all.position = position;
  // @ts-expect-error colour gains need red and blue
  void camera.writeColourGains({ red: 1 });
  // @ts-expect-error the camera links only "stream" and "preview"
  void camera.snapshot("nothing");
  // @ts-expect-error steps is a number
  void focus.run({ steps: "many" });
  // @ts-expect-error the output's z is a number
  void focus.run().then((output) => output.z.toUpperCase());
}

export async function allChanges(stage: SimulatedStageClient, signal: AbortSignal) {
  for await (const change of stage.observeAllProperties({ signal })) {
    // The name narrows the value.
    if (change.name === "speed") {
      const speed: number = change.value;
      // @ts-expect-error speed is a number, not a position
      const wrong: Position = change.value;
      void speed, wrong;
    }
  }
  for await (const emission of stage.subscribeAllEvents({ signal })) {
    // @ts-expect-error the stage has no event called "explosion"
    if (emission.name === "explosion") break;
  }
}
`;

/** A TD with names that are not identifiers and every schema shape the generator maps. */
const AWKWARD_TD = {
  title: "Odd device #2",
  base: "http://127.0.0.1:9/odd/",
  properties: {
    "frame-rate": {
      type: "number",
      description: "Frames per second */ not the end of a comment",
      minimum: 1,
      forms: [{ href: "frame-rate" }],
    },
    mode: {
      enum: ["idle", "scan", 3],
      readOnly: true,
      forms: [{ href: "mode", op: "readproperty" }],
    },
    "2x": { const: "fixed", readOnly: true, forms: [{ href: "2x", op: "readproperty" }] },
    label: { type: ["string", "null"], forms: [{ href: "label" }] },
    legacy: { type: "string", nullable: true, forms: [{ href: "legacy" }] },
    shape: {
      oneOf: [
        { type: "object", properties: { radius: { type: "number" } }, required: ["radius"] },
        { type: "object", properties: { side: { type: "number" } }, required: ["side"] },
      ],
      forms: [{ href: "shape" }],
    },
    reading: { anyOf: [{ type: "integer" }, { type: "string" }], forms: [{ href: "reading" }] },
    tags: { type: "array", items: { type: ["string", "integer"] }, forms: [{ href: "tags" }] },
    point: {
      type: "array",
      prefixItems: [{ type: "number" }, { type: "number" }],
      forms: [{ href: "point" }],
    },
    calibration: {
      type: "object",
      properties: {
        gain: { type: "number", readOnly: true, description: "Set at the factory" },
        "offset-mv": { type: "number" },
        notes: { type: "object", additionalProperties: { type: "string" } },
      },
      required: ["gain"],
      forms: [{ href: "calibration" }],
    },
    secret: { type: "string", writeOnly: true, forms: [{ href: "secret", op: "writeproperty" }] },
  },
  actions: {
    constructor: { forms: [{ href: "constructor" }] },
    thing: { output: { type: "boolean" }, forms: [{ href: "thing" }] },
    "self-test": {
      input: {
        type: "object",
        properties: { level: { type: "integer", enum: [1, 2, 3] } },
        required: ["level"],
      },
      output: {
        allOf: [{ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] }],
      },
      forms: [{ href: "self-test" }],
    },
  },
  events: {
    "over-heat": {
      data: { type: "object", properties: { celsius: { type: "number" } }, required: ["celsius"] },
      forms: [{ href: "over-heat", subprotocol: "sse" }],
    },
  },
};

const AWKWARD_USAGE = `import { OddDevice2Client, type Calibration, type Mode, type OddDevice2Properties, type SelfTestOutput, type Shape } from "./odd-client.js";

export async function use(odd: OddDevice2Client) {
  await odd.writeFrameRate(25);
  const mode: "idle" | "scan" | 3 = await odd.readMode();
  const fixed: "fixed" = await odd.read2x();
  const label: string | null = await odd.readLabel();
  const legacy: string | null = await odd.readLegacy();
  const shape: Shape = await odd.readShape();
  const area = "radius" in shape ? shape.radius ** 2 * Math.PI : shape.side ** 2;
  const reading: number | string = await odd.readReading();
  const tags: (string | number)[] = await odd.readTags();
  const [x, y]: [number, number] = await odd.readPoint();
  const calibration: Calibration = await odd.readCalibration();
  const offset: number | undefined = calibration["offset-mv"];
  const note: string | undefined = calibration.notes?.anything;
  await odd.writeSecret("sesame");
  const started = await odd.constructorAction();
  const thing = await odd.thingAction();
  const test = await odd.selfTest({ level: 2 });
  const outcome: SelfTestOutput = await test.result();
  const all: OddDevice2Properties = await odd.readAllProperties();
  for await (const { celsius } of odd.subscribeOverHeat()) return celsius + (outcome.ok ? 1 : 0);
  return [mode, fixed, label, legacy, area, reading, tags, x, y, offset, note, started, thing, all] as const;
}

export function typeErrors(odd: OddDevice2Client, calibration: Calibration, mode: Mode) {
  // @ts-expect-error "off" is not one of the enum's values
  const wrong: Mode = "off";
  // @ts-expect-error gain is readOnly
  calibration.gain = 2;
  // @ts-expect-error a shape is a circle or a square
  const blob: Shape = { corners: 3 };
  // @ts-expect-error level is 1, 2 or 3
  void odd.selfTest({ level: 4 });
  // @ts-expect-error level is required
  void odd.selfTest({});
  // @ts-expect-error secret is writeOnly: there is no readSecret
  void odd.readSecret();
  // @ts-expect-error mode is readOnly: there is no writeMode
  void odd.writeMode(mode);
  // @ts-expect-error point is a pair of numbers
  void odd.writePoint([1, 2, 3]);
  // @ts-expect-error label is a string or null, never a number
  void odd.writeLabel(5);
  return [wrong, blob];
}
`;

describe("client-gen for awkward names and schemas", () => {
  it("maps every schema shape to a type and every name to an identifier", async () => {
    await writeFile(join(dir, "odd-td.json"), JSON.stringify(AWKWARD_TD));
    const generated = await clientGen(join(dir, "odd-td.json"), "--import", CLIENT_SOURCE);
    expect(generated, generated.stderr).toMatchObject({ code: 0, stderr: "" });
    const source = generated.stdout;
    await writeFile(join(dir, "odd-client.ts"), source);
    // The comment-ending text is escaped; descriptions and constraints become doc comments.
    expect(source).toContain("Frames per second *\\/ not the end of a comment. Minimum 1.");
    expect(source).toContain('export type Mode = "idle" | "scan" | 3;');
    expect(source).toContain("/** Set at the factory */\n  readonly gain: number;");
    expect(source).toContain('  "offset-mv"?: number;');
    expect(source).toContain("read2x(options?: RequestOptions)");
    expect(source).toContain("constructorAction(options?: InvokeOptions)");
    await writeFile(join(dir, "odd-usage.ts"), AWKWARD_USAGE);
    expect(typecheck([join(dir, "odd-usage.ts")])).toEqual([]);
  });
});

describe("client-gen's command line", () => {
  it("--help, and a missing argument is a usage error (exit 2)", async () => {
    const help = await clientGen("--help");
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain("Usage: labthings-ts client-gen <TD URL or file>");
    const missing = await clientGen();
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("give one TD URL or file");
    const badName = await clientGen(`${base}/stage/`, "--name", "not-a-name");
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain("is not a TypeScript identifier");
    const top = await runNode([CLI, "--help"]);
    expect(top.stdout).toContain("client-gen");
  });

  it("something that is not a TD, or no file, fails with a clear message (exit 1)", async () => {
    const notTd = await clientGen(`${base}/stage/position`);
    expect(notTd.code).toBe(1);
    expect(notTd.stderr).toMatch(/is not a Thing Description: 'title' must be a non-empty string/);
    const notFound = await clientGen(`${base}/nothing/`);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toMatch(/→ 404: .*nothing/);
    const noFile = await clientGen(join(dir, "missing.json"));
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain("ENOENT");
    await writeFile(join(dir, "broken.json"), "{ not json");
    const broken = await clientGen(join(dir, "broken.json"));
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("is not JSON");
  });
});
