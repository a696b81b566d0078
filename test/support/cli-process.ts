/**
 * The built command line (`dist/src/cli/main.js serve --log-format json`) as a real child
 * process: its JSON log lines collected as they come, bounded waits for a log line or for
 * the exit, signals with the moment they were sent. Also the register of every child
 * process a test starts (the CLI, curl, ffmpeg, …): `killAll` in afterEach leaves none
 * running. `npm test` builds first (the `pretest` script); run `npm run build` before
 * running a file that uses this on its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { deferred, within } from "./within.js";

const DIST = fileURLToPath(new URL("../../dist/", import.meta.url));
export const CLI = join(DIST, "src/cli/main.js");
/** The built framework, imported by absolute path from Thing files outside the project. */
export const FRAMEWORK = join(DIST, "src/index.js");
/** The simulated microscope's classes, as `module#Export` for a config file. */
export const STAGE = `${join(DIST, "examples/microscope/stage.js")}#SimulatedStage`;
export const CAMERA = `${join(DIST, "examples/microscope/camera.js")}#SimulatedCamera`;

/** Fail with a hint when `dist/` has not been built; for beforeAll. */
export function assertBuilt(): void {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} does not exist: run 'npm run build' first (npm test does it)`);
  }
}

// ─── every child process a test starts ───────────────────────────────────────────────

const running = new Map<ChildProcess, Promise<void>>();

/** Register a child process for `killAll`; it is forgotten once it has closed. */
export function trackChild(child: ChildProcess): void {
  running.set(
    child,
    new Promise<void>((resolve) => {
      child.once("close", () => {
        running.delete(child);
        resolve();
      });
    }),
  );
}

/** SIGKILL every registered child still running and wait until each has closed; for afterEach. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const [child] of left) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  await Promise.all(left.map(([, closed]) => within(closed, "a killed child to exit")));
}

// ─── the CLI ──────────────────────────────────────────────────────────────────────────

export interface LogLine {
  msg?: string;
  url?: string;
  level?: number;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process exited. */
  at: number;
}

/** A running `labthings-ts` process: its parsed stdout, its stderr, and its exit. */
export interface Cli {
  child: ChildProcess;
  /**
   * stdout lines as they arrive: parsed JSON, or `{ msg: text, raw: true }` for a line
   * that is not JSON (which is also listed in `rawLines`).
   */
  lines: LogLine[];
  /** stdout lines that were not JSON. */
  rawLines: string[];
  stderr: () => string;
  /** Resolves once the process has exited (stdio may still be draining). */
  exited: Promise<Exit>;
  /** Resolves once the process has exited and its output streams have closed. */
  closed: Promise<Exit>;
  /** The first line (logged so far or to come) that passes `predicate`; bounded. */
  waitForLog(predicate: (line: LogLine) => boolean, what: string): Promise<LogLine>;
  /** Send a signal; returns performance.now() just before sending. */
  signal(signal: NodeJS.Signals): number;
}

const scratchDirs = new Set<string>();
function removeScratchDirs(): void {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  scratchDirs.clear();
}

/**
 * Start `labthings-ts serve --log-format json …args` in `cwd`; by default a fresh
 * temporary folder (removed at exit), so settings saved by the default microscope
 * (`./settings`) never leak between runs or into the repository.
 */
export function startCli(
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    /** Run it through this command, e.g. `nsenter --net=…` (a network namespace). */
    launcher?: string[];
  } = {},
): Cli {
  let cwd = options.cwd;
  if (cwd === undefined) {
    cwd = mkdtempSync(join(tmpdir(), "labthings-cli-"));
    if (scratchDirs.size === 0) process.once("exit", removeScratchDirs);
    scratchDirs.add(cwd);
  }
  const command = [...(options.launcher ?? []), process.execPath, CLI];
  const child = spawn(
    command[0]!,
    [...command.slice(1), "serve", "--log-format", "json", ...args],
    {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  trackChild(child);
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  createInterface({ input: child.stdout! }).on("line", (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      rawLines.push(text);
      line = { msg: text, raw: true };
    }
    lines.push(line);
    for (const listener of [...listeners]) listener(line);
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() }));
  });
  // Not every test awaits `exited`; a spawn error rejects `closed` as well.
  exited.catch(() => {});
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", () => resolve(exited));
  });
  return {
    child,
    lines,
    rawLines,
    stderr: () => stderr,
    exited,
    closed,
    signal(signal) {
      expect(child.exitCode, `the CLI is still running when it is sent ${signal}`).toBeNull();
      const at = performance.now();
      child.kill(signal);
      return at;
    },
    waitForLog(predicate, what) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      const { promise, resolve } = deferred<LogLine>();
      const listener = (line: LogLine) => {
        if (!predicate(line)) return;
        listeners.delete(listener);
        resolve(line);
      };
      listeners.add(listener);
      const early = closed.then((exit) => {
        listeners.delete(listener);
        throw new Error(
          `the CLI exited (${JSON.stringify(exit)}) before logging ${what}\nstderr:\n${stderr}`,
        );
      });
      return within(Promise.race([promise, early]), what);
    },
  };
}

/** The `url` of the "listening on …" log line: where the server answers. */
export async function listeningUrl(cli: Cli): Promise<string> {
  const line = await cli.waitForLog(
    (l) => typeof l.msg === "string" && l.msg.startsWith("listening on") && "url" in l,
    "the 'listening on' log line",
  );
  expect(typeof line.url).toBe("string");
  return line.url as string;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from the spawn to the end. */
  ms: number;
}

/**
 * Start any command (registered for `killAll`); `finished` resolves once it has exited
 * and its output is read, with its exit, what it printed and how long it took.
 */
export function startProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { child: ChildProcess; finished: Promise<Finished> } {
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  trackChild(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const finished = new Promise<Finished>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started }),
    );
  });
  return { child, finished };
}

/** Run any command to its end, bounded (default WAIT_MS). */
export function runProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; ms?: number } = {},
): Promise<Finished> {
  const { finished } = startProcess(command, args, options);
  return within(finished, `${command} ${args.join(" ")} to exit`, options.ms);
}

/**
 * Run `labthings-ts …args` (any command, no flags added) to its end, bounded: its exit
 * code and everything it printed. For commands expected to finish on their own.
 */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Finished> {
  return runProcess(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: "1", LABTHINGS_TOKEN: "", ...options.env },
  });
}
