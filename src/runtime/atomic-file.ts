/**
 * Write a file so that a crash at any moment leaves either the old or the new content:
 * a temporary file next to it is written and fsynced, renamed over the target, and the
 * folder fsynced so the rename itself survives a power cut.
 *
 * Why not write-file-atomic: it installs a signal-exit handler while it writes, and when
 * that handler is the last SIGTERM listener (after an app's `process.once("SIGTERM")`
 * has fired) it re-raises the signal and kills the process before the server has saved
 * its settings. The server owns its shutdown; nothing it uses may touch signals.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

const TEMP_SUFFIX = ".tmp";

/** Replace `path` with `text` atomically and durably; keeps an existing file's mode. */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`;
  const mode = (await stat(path).catch(() => undefined))?.mode ?? 0o666;
  const file = await open(temp, "wx", mode & 0o777);
  try {
    await file.writeFile(text, "utf8");
    await file.sync();
    await file.close();
    await rename(temp, path);
  } catch (error) {
    await file.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await syncFolder(dirname(path));
}

/**
 * The same, blocking: for the last moment before a process exits (a second Ctrl-C), when
 * no callback would ever run again.
 */
export function writeFileAtomicallySync(path: string, text: string): void {
  const temp = `${path}.${randomBytes(6).toString("hex")}${TEMP_SUFFIX}`;
  let mode = 0o666;
  try {
    mode = statSync(path).mode;
  } catch {}
  const file = openSync(temp, "wx", mode & 0o777);
  try {
    writeFileSync(file, text, "utf8");
    fsyncSync(file);
    closeSync(file);
    renameSync(temp, path);
  } catch (error) {
    try {
      closeSync(file);
    } catch {}
    rmSync(temp, { force: true });
    throw error;
  }
  try {
    const folder = openSync(dirname(path), "r");
    try {
      fsyncSync(folder);
    } finally {
      closeSync(folder);
    }
  } catch {
    // As in syncFolder: the rename is atomic even where a folder cannot be fsynced.
  }
}

/**
 * Delete temporary files a killed process left next to `path` (`<name>.<random>.tmp`):
 * they never hold the only copy of anything, since the target is replaced only by rename.
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const folder = dirname(path);
  const prefix = `${basename(path)}.`;
  const stale = (await readdir(folder).catch(() => [] as string[])).filter(
    (name) => name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX),
  );
  await Promise.all(stale.map((name) => rm(join(folder, name), { force: true })));
  return stale;
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, "r");
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot fsync a folder; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}
