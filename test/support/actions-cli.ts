/**
 * The real command line (`dist/src/cli/main.js serve`) as a child process, for the action
 * tests: JSON log lines collected as they come, bounded waits for a line or for the exit,
 * and a cleanup that kills whatever is still running. Run `npm run build` first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { deferred, within } from "./actions-http.js";

export const CLI = join(fileURLToPath(new URL("../../dist/", import.meta.url)), "src/cli/main.js");

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process exited. */
  at: number;
}

export interface Cli {
  child: ChildProcess;
  lines: LogLine[];
  stderr: () => string;
  /** Resolves once the process has exited and its output streams have closed. */
  closed: Promise<Exit>;
  waitForLog(predicate: (line: LogLine) => boolean, what: string): Promise<LogLine>;
}

const running = new Set<ChildProcess>();

/** `serve --port 0 --log-format json`, plus `args`. */
export function startCli(args: string[] = []): Cli {
  const child = spawn(
    process.execPath,
    [CLI, "serve", "--port", "0", "--log-format", "json", ...args],
    { env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  running.add(child);
  const lines: LogLine[] = [];
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
      line = { msg: text, raw: true };
    }
    lines.push(line);
    for (const listener of [...listeners]) listener(line);
  });
  let exit: Exit | undefined;
  child.once("exit", (code, signal) => {
    exit = { code, signal, at: performance.now() };
  });
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      running.delete(child);
      resolve(exit ?? { code, signal, at: performance.now() });
    });
  });
  return {
    child,
    lines,
    stderr: () => stderr,
    closed,
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
      const early = closed.then((exited) => {
        listeners.delete(listener);
        throw new Error(
          `the CLI exited (${JSON.stringify(exited)}) before logging ${what}\nstderr:\n${stderr}`,
        );
      });
      return within(Promise.race([promise, early]), what);
    },
  };
}

/** The `url` of the "listening on …" log line. */
export async function listeningUrl(cli: Cli): Promise<string> {
  const line = await cli.waitForLog(
    (l) => typeof l.msg === "string" && l.msg.startsWith("listening on") && "url" in l,
    "the 'listening on' log line",
  );
  return line.url as string;
}

/** Kill (SIGKILL) every child still running and wait for them; for afterEach. */
export async function killAll(): Promise<void> {
  const children = [...running];
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  await Promise.all(
    children.map((child) =>
      child.exitCode === null && child.signalCode === null
        ? within(once(child, "close"), "a killed child to exit")
        : undefined,
    ),
  );
}
