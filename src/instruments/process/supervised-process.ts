/**
 * A child process that never outlives the server: the capture process of a camera.
 *
 * - `stop()` asks it to end (SIGTERM), and kills it (SIGKILL) if it has not gone within
 *   a bound: a hung ffmpeg cannot hold up shutdown.
 * - If the server itself dies without running any code (SIGKILL, a crash in native
 *   code), the kernel kills the child: it is started through util-linux's
 *   `setpriv --pdeathsig SIGKILL`, which sets PR_SET_PDEATHSIG and then execs the real
 *   program (same pid, no shell, no helper left running). This is the OS's own facility
 *   for exactly this job; a watchdog written here would need a process of its own that
 *   could itself be killed first. Without setpriv (macOS, minimal images) the child is
 *   still stopped on every orderly exit, and a warning says what is not covered.
 * - The last lines of its stderr are kept, so a failure can be reported with the
 *   program's own words.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import type { ThingLogger } from "../../index.js";
import { findExecutable } from "./find-executable.js";

export interface SupervisedProcessOptions {
  /** The program (looked up on PATH) and its arguments. */
  command: string;
  args: readonly string[];
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 2000 ms. */
  killAfterMs?: number;
  logger?: ThingLogger;
}

/** How a supervised process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last non-empty line it wrote to stderr, if any. */
  lastStderrLine: string | undefined;
  /** Its last few stderr lines (at most 20), for the log. */
  stderrTail: string[];
  /** It was ended by `stop()`, not by itself. */
  stopped: boolean;
}

const STDERR_LINES_KEPT = 20;
let pdeathsigWarned = false;

/** Processes started and not yet ended: killed synchronously if the server exits. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // process.exit() and uncaught errors run 'exit' listeners: kill what is left (sync).
  process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

export class SupervisedProcess {
  readonly #child: ChildProcess;
  readonly #stderrLines: string[] = [];
  readonly #killAfterMs: number;
  readonly exited: Promise<ProcessExit>;
  #stopping = false;
  #partialLine = "";

  /** Spawn now. Throws when the program is not on PATH (a clear error at start, not a loop). */
  constructor(readonly options: SupervisedProcessOptions) {
    this.#killAfterMs = options.killAfterMs ?? 2000;
    const program = findExecutable(options.command);
    if (!program) {
      throw new Error(`'${options.command}' is not installed (not found on PATH)`);
    }
    const setpriv = process.platform === "linux" ? findExecutable("setpriv") : undefined;
    if (!setpriv && !pdeathsigWarned) {
      pdeathsigWarned = true;
      options.logger?.warn(
        "setpriv (util-linux) not found: a capture process would outlive a server killed with SIGKILL",
      );
    }
    const [file, args] = setpriv
      ? [setpriv, ["--pdeathsig", "SIGKILL", "--", program, ...options.args]]
      : [program, [...options.args]];
    this.#child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    installExitHook();
    running.add(this.#child);
    this.#child.stderr?.setEncoding("utf8");
    this.#child.stderr?.on("data", (text: string) => this.#onStderr(text));
    this.exited = new Promise<ProcessExit>((resolve) => {
      let spawnError: Error | undefined;
      this.#child.once("error", (error) => {
        spawnError = error;
      });
      this.#child.once("close", (code, signal) => {
        running.delete(this.#child);
        if (this.#partialLine.trim()) this.#keepLine(this.#partialLine);
        resolve({
          code,
          signal,
          lastStderrLine: this.lastStderrLine ?? spawnError?.message,
          stderrTail: [...this.#stderrLines],
          stopped: this.#stopping,
        });
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get stdout(): Readable {
    return this.#child.stdout!;
  }

  get lastStderrLine(): string | undefined {
    return this.#stderrLines.at(-1);
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /**
   * End it: SIGTERM, then SIGKILL after `killAfterMs`. Resolves once it has exited, which
   * a SIGKILL guarantees (even for a stopped or hung process).
   */
  async stop(): Promise<ProcessExit> {
    this.#stopping = true;
    if (this.running) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (this.running) {
          this.options.logger?.warn(
            { pid: this.pid, command: this.options.command },
            `${this.options.command} did not exit ${this.#killAfterMs} ms after SIGTERM: killed`,
          );
          this.#child.kill("SIGKILL");
        }
      }, this.#killAfterMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }

  #onStderr(text: string): void {
    const lines = (this.#partialLine + text).split(/\r?\n|\r/);
    this.#partialLine = lines.pop() ?? "";
    for (const line of lines) this.#keepLine(line);
  }

  #keepLine(line: string): void {
    const trimmed = line.trim();
    if (!trimmed) return;
    this.#stderrLines.push(trimmed);
    if (this.#stderrLines.length > STDERR_LINES_KEPT) this.#stderrLines.shift();
  }
}
