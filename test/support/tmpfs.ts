/**
 * A small tmpfs mounted on a temporary folder, for tests of disks that fail: full (a
 * tmpfs of a few KiB, filled) or read-only (remounted `ro`, which stops root too, unlike
 * chmod). Needs root and a kernel that lets the process mount (CI runs as root); where
 * mounting fails, `mountTmpfs` says why, so the test can skip with that reason.
 *
 * @example
 * ```ts
 * const disk = await mountTmpfs("64k");
 * if (typeof disk === "string") return ctx.skip(disk);
 * try { … disk.readOnly(true) … } finally { disk.unmount(); }
 * ```
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./temp-dir.js";

export interface TmpfsMount {
  /** The mount point (an empty folder). */
  dir: string;
  /** Remount read-only (true) or read-write (false). */
  readOnly(on: boolean): void;
  /** Write a file that takes every free byte: later writes fail with ENOSPC. */
  fill(): string;
  /** Unmount (lazily if something still holds it); safe to call twice. */
  unmount(): void;
}

const mounted = new Set<TmpfsMount>();

/** Mount a tmpfs of `size` (`64k`, `1m`); a string saying why when that is not possible. */
export async function mountTmpfs(size: string): Promise<TmpfsMount | string> {
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root (CI runs as root)";
  const dir = await tempDir("labthings-tmpfs-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir], {
      stdio: "pipe",
    });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs here: ${stderr || (error as Error).message}`;
  }
  let isMounted = true;
  const mount: TmpfsMount = {
    dir,
    readOnly(on) {
      execFileSync("mount", ["-o", `remount,${on ? "ro" : "rw"}`, dir], { stdio: "pipe" });
    },
    fill() {
      const filler = join(dir, "filler.bin");
      const chunk = Buffer.alloc(4096, 0x55);
      try {
        for (let i = 0; i < 1_000_000; i++) appendFileSync(filler, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
      }
      return filler;
    },
    unmount() {
      if (!isMounted) return;
      isMounted = false;
      mounted.delete(mount);
      try {
        execFileSync("umount", [dir], { stdio: "pipe" });
      } catch {
        execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  mounted.add(mount);
  return mount;
}

/** Unmount every tmpfs still mounted: for afterEach/afterAll. */
export function unmountAll(): void {
  for (const mount of [...mounted]) mount.unmount();
}
