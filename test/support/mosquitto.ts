/**
 * A real Mosquitto broker for a test file: Debian's `mosquitto`, started on a free port of
 * 127.0.0.1 with its own config file (no persistence, so after a restart the broker holds
 * only what clients publish again), stopped and started again on the same port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { trackChild } from "./cli-process.js";
import { tempDir } from "./temp-dir.js";
import { until, within } from "./within.js";

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.connect(port, "127.0.0.1");
  });
}

export class Mosquitto {
  #child: ChildProcess | undefined;
  #log = "";

  private constructor(
    readonly port: number,
    private readonly config: string,
  ) {}

  static async start(): Promise<Mosquitto> {
    const dir = await tempDir("labthings-mosquitto-");
    const port = await freePort();
    const config = join(dir, "mosquitto.conf");
    await writeFile(
      config,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "",
      ].join("\n"),
    );
    const broker = new Mosquitto(port, config);
    await broker.resume();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get log(): string {
    return this.#log;
  }

  /** Start (again) on the same port; resolves once it accepts connections. */
  async resume(): Promise<void> {
    const child = spawn("mosquitto", ["-c", this.config], { stdio: ["ignore", "ignore", "pipe"] });
    trackChild(child);
    child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      this.#log += text;
    });
    this.#child = child;
    await within(
      (async () => {
        while (!(await accepts(this.port))) {
          if (child.exitCode !== null) throw new Error(`mosquitto exited:\n${this.#log}`);
          await sleep(20);
        }
      })(),
      "mosquitto to accept connections",
    );
  }

  /** SIGTERM and wait for the exit: every client connection drops. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await within(exited, "mosquitto to exit");
  }
}

/** `mosquitto_sub` on the broker: each line `retain topic payload`, as they arrive. */
export function mosquittoSub(
  broker: Mosquitto,
  filter: string,
  extra: string[] = [],
): {
  lines: string[];
  child: ChildProcess;
  waitFor: (test: (lines: string[]) => boolean, what: string) => Promise<void>;
} {
  const child = spawn(
    "mosquitto_sub",
    ["-h", "127.0.0.1", "-p", String(broker.port), "-t", filter, "-F", "%r %t %p", ...extra],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  trackChild(child);
  const lines: string[] = [];
  let buffered = "";
  child.stdout!.setEncoding("utf8").on("data", (text: string) => {
    buffered += text;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const waitFor = (test: (lines: string[]) => boolean, what: string) =>
    until(() => test(lines), what);
  return { lines, child, waitFor };
}
