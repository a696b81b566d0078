/**
 * A private network namespace for mDNS tests: `unshare --net` makes one holding only its
 * own loopback interface, set up for multicast (`ip link set lo up multicast on`, a route
 * for 224.0.0.0/4), so DNS-SD traffic never reaches the machine's real interfaces. A
 * sleeping holder process keeps it alive; every command runs in it through
 * `nsenter --net=/proc/<holder>/ns/net`. Needs root (CI is root); `create` says why not
 * otherwise, so the tests can skip with the reason printed.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { trackChild } from "./cli-process.js";
import { within } from "./within.js";

const run = promisify(execFile);

const SETUP =
  "ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && echo ready && exec sleep 600";

export class NetworkNamespace {
  private constructor(private readonly holder: ChildProcess) {}

  /** A namespace, or the reason one cannot be made here. */
  static async create(): Promise<NetworkNamespace | string> {
    try {
      await run("unshare", ["--net", "true"]);
      await run("nsenter", ["--version"]);
    } catch (error) {
      return `cannot make a network namespace here (unshare --net needs root): ${(error as Error).message.split("\n")[0]}`;
    }
    const holder = spawn("unshare", ["--net", "sh", "-c", SETUP], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    trackChild(holder);
    let stderr = "";
    holder.stderr!.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: holder.stdout! }).once("line", () => resolve());
      holder.once("exit", () => reject(new Error(`the namespace holder exited: ${stderr}`)));
    });
    await within(ready, "the network namespace");
    return new NetworkNamespace(holder);
  }

  /** Prefix for a command to run inside the namespace. */
  get launcher(): string[] {
    return ["nsenter", `--net=/proc/${this.holder.pid}/ns/net`, "--"];
  }

  /** Run a command inside to its end; resolves with its output. */
  async exec(
    command: string,
    args: string[],
    timeoutMs = 20_000,
  ): Promise<{ stdout: string; stderr: string }> {
    const [launcher, ...prefix] = this.launcher;
    return run(launcher!, [...prefix, command, ...args], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
  }

  /** Start a command inside; the caller ends it (it is registered for killAll). */
  spawn(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const [launcher, ...prefix] = this.launcher;
    const child = spawn(launcher!, [...prefix, command, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env,
    });
    trackChild(child);
    return child;
  }

  close(): void {
    this.holder.kill("SIGKILL");
  }
}
