/**
 * What the operating system says about processes: the children of a process and whether
 * a pid is still alive (a zombie counts as gone: it has exited and holds no device).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";

export interface ProcessInfo {
  pid: number;
  command: string;
}

/** The live children of `parent` (from /proc, via ps), optionally only those named `command`. */
export function childProcesses(parent: number, command?: string): ProcessInfo[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(parent)], { encoding: "utf8" });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((parts) => parts.length === 2)
    .map(([pid, comm]) => ({ pid: Number(pid), command: comm! }))
    .filter((p) => isAlive(p.pid) && (command === undefined || p.command === command));
}

/** The process exists and has not exited (zombies are dead). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Poll until `test()` returns a value (not undefined), bounded. */
export async function pollUntil<T>(
  test: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await test();
    if (value !== undefined) return value;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(25);
  }
}
