/**
 * A child process that changes an object-valued `@setting` every 1–5 ms, to be killed
 * with SIGKILL at a random moment: the settings file it leaves must be whole. The child is
 * a small TypeScript script, compiled once to plain `.mjs` (so SIGKILL hits the process
 * that writes, and starting one costs no loader), importing the built framework.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import ts from "typescript";
import { FRAMEWORK, trackChild } from "./cli-process.js";
import { deferred, within } from "./within.js";

/** The Thing's name, so its file is `<settingsDir>/busy.json`. */
export const BUSY_THING = "busy";
/** Keys of the object-valued setting `state`. */
export const STATE_KEYS = ["counter", "label", "nested", "samples"];
export const SAMPLES = 16;

const busySource = `import { setting, Thing, ThingServer, Type } from ${JSON.stringify(FRAMEWORK)};

const State = Type.Object(
  {
    counter: Type.Integer({ minimum: 0 }),
    label: Type.String(),
    samples: Type.Array(Type.Number(), { minItems: ${SAMPLES}, maxItems: ${SAMPLES} }),
    nested: Type.Object({ even: Type.Boolean(), text: Type.String() }),
  },
  { additionalProperties: false },
);

function state(counter: number) {
  return {
    counter,
    // Large enough that a torn write would show.
    label: \`value-\${counter}-\`.padEnd(4096, "x"),
    samples: Array.from({ length: ${SAMPLES} }, (_, i) => counter * ${SAMPLES} + i),
    nested: { even: counter % 2 === 0, text: String(counter) },
  };
}

class Busy extends Thing {
  @setting({ schema: State })
  accessor state = state(0);
}

const busy = new Busy();
const server = new ThingServer([{ name: ${JSON.stringify(BUSY_THING)}, thing: busy }], {
  port: 0,
  settingsDir: process.argv[2],
});
await server.start();
process.stdout.write("started\\n");
let counter = 0;
let timer;
const tick = () => {
  counter += 1;
  busy.state = state(counter);
  timer = setTimeout(tick, 1 + Math.floor(Math.random() * 5));
};
tick();
// The way many apps stop a server: once, then exit. Nothing in the server may re-raise
// the signal while a save is in flight (write-file-atomic's signal-exit handler did).
process.once("SIGTERM", async () => {
  clearTimeout(timer);
  const report = await server.close();
  process.stdout.write(\`closed \${busy.state.counter} \${report.settingsSaved}\\n\`);
  process.exit(0);
});
`;

/**
 * Write the child script into `dir`, compiled to plain JavaScript once (TypeScript
 * lowers the decorators), so each of the many children starts without a TS loader.
 */
export async function writeBusyScript(dir: string): Promise<string> {
  const path = join(dir, "busy.mjs");
  const { outputText } = ts.transpileModule(busySource, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  await writeFile(path, outputText);
  return path;
}

/**
 * Run the script with `settingsDir`, let it run `termAfterMs`, send SIGTERM and wait for
 * it to exit. Returns the exit and what it printed after closing (`closed <counter> <saved>`).
 */
export async function runAndTerminate(
  script: string,
  settingsDir: string,
  termAfterMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; closedLine: string | undefined }> {
  const child = spawn(process.execPath, [script, settingsDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child);
  let closedLine: string | undefined;
  const started = deferred();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line === "started") started.resolve();
    if (line.startsWith("closed ")) closedLine = line;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    },
  );
  await within(started.promise, "the child to start");
  await new Promise((resolve) => setTimeout(resolve, termAfterMs));
  child.kill("SIGTERM");
  const exit = await within(exited, "the child to exit after SIGTERM");
  return { ...exit, closedLine };
}

/**
 * Run the script with `settingsDir`, wait until it reports it started, let it run
 * `killAfterMs`, then SIGKILL it and wait until it has exited. Bounded.
 */
export async function runAndKill(
  script: string,
  settingsDir: string,
  killAfterMs: number,
): Promise<{ signal: NodeJS.Signals | null; code: number | null }> {
  const child = spawn(process.execPath, [script, settingsDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ signal: NodeJS.Signals | null; code: number | null }>(
    (resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    },
  );
  const started = deferred();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line === "started") started.resolve();
  });
  await within(
    Promise.race([
      started.promise,
      exited.then((exit) => {
        throw new Error(`the child exited (${JSON.stringify(exit)}) before starting:\n${stderr}`);
      }),
    ]),
    "the child to start",
  );
  const killed = deferred();
  const timer = setTimeout(() => {
    child.kill("SIGKILL");
    killed.resolve();
  }, killAfterMs);
  try {
    const exit = await within(
      Promise.race([
        exited.then((e) => {
          if (e.signal !== "SIGKILL") throw new Error(`the child exited early: ${stderr}`);
          return e;
        }),
        killed.promise.then(() => exited),
      ]),
      "the child to be killed",
    );
    return exit;
  } finally {
    clearTimeout(timer);
  }
}
