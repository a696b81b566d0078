import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, rename, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobOutput } from "../model/action.js";

/** A stored blob. Files live in the store's own folder under a random name. */
export interface StoredBlob {
  readonly id: string;
  readonly mediaType: string;
  readonly size: number;
  readonly data?: Buffer;
  readonly path?: string;
}

/** The ActionStatus output for a blob (`media_type` is labthings-fastapi's name for `mediaType`). */
export interface BlobReference {
  href: string;
  mediaType: string;
  media_type: string;
  size: number;
}

/** 192 random bits, URL-safe: unguessable, and never a path. */
const BLOB_ID = /^[A-Za-z0-9_-]{32}$/;

/**
 * Binary action outputs. A blob is found by its random id in a map, never by a path
 * built from the request, so no request can reach a file outside the store.
 */
export class BlobStore {
  readonly #blobs = new Map<string, StoredBlob & { owner: string }>();
  #folder: Promise<string> | undefined;

  /** Store an action's output for the invocation `owner`. File outputs are moved in. */
  async add(output: BlobOutput, owner: string): Promise<StoredBlob> {
    const id = randomBytes(24).toString("base64url");
    let blob: StoredBlob;
    if (output.data) {
      blob = { id, mediaType: output.mediaType, size: output.data.length, data: output.data };
    } else {
      const path = join(await this.#storeFolder(), id);
      await moveFile(output.path!, path);
      blob = { id, mediaType: output.mediaType, size: (await stat(path)).size, path };
    }
    this.#blobs.set(id, { ...blob, owner });
    return blob;
  }

  get(id: string): StoredBlob | undefined {
    return BLOB_ID.test(id) ? this.#blobs.get(id) : undefined;
  }

  get size(): number {
    return this.#blobs.size;
  }

  /** Remove every blob of an invocation (its retention ended). */
  async removeOwner(owner: string): Promise<void> {
    for (const [id, blob] of this.#blobs) {
      if (blob.owner !== owner) continue;
      this.#blobs.delete(id);
      if (blob.path) await rm(blob.path, { force: true });
    }
  }

  /** Delete the store's folder (server closed). */
  async dispose(): Promise<void> {
    this.#blobs.clear();
    if (this.#folder) await rm(await this.#folder, { recursive: true, force: true });
  }

  #storeFolder(): Promise<string> {
    this.#folder ??= mkdtemp(join(tmpdir(), "labthings-blobs-"));
    return this.#folder;
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await copyFile(from, to);
    await unlink(from);
  }
}
