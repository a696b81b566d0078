/**
 * Temporary folders under the OS temp dir for a test file's fixtures (config files, Thing
 * modules, scratch output): `tempDir` makes one, `removeTempDirs` (in afterAll or
 * afterEach) deletes every one made since.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made = new Set<string>();

/** A new empty folder named `prefix` plus random characters. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Delete (recursively) every folder `tempDir` has made and not yet deleted. */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}
