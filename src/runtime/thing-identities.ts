/**
 * Stable Thing Description `id`s. Each Thing (and the server itself, for the TD at
 * `/.well-known/wot`) gets a `urn:uuid:` made once and kept in the settings folder, so a
 * directory or a consumer that stored the id finds the same Thing after a restart. An id
 * given in the config wins and is not written.
 *
 * The file is `thing-ids.labthings.json`: its dots keep it apart from every Thing's own
 * settings file (`<thing>.json`; Thing names have no dots).
 */
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { ThingLogger } from "../model/logger.js";
import { writeFileAtomically } from "./atomic-file.js";

export const IDENTITY_FILE = "thing-ids.labthings.json";

export interface ThingIdentityFile {
  server?: string;
  things?: Record<string, string>;
}

export interface ResolvedIdentities {
  /** `id` of the server's own TD (`/.well-known/wot`). */
  server: string;
  /** Thing name → `id`. */
  things: Map<string, string>;
}

/** `urn:uuid:` followed by a random (version 4) UUID. */
export function newThingId(): string {
  return `urn:uuid:${randomUUID()}`;
}

/**
 * Read the ids kept in `folder`, make the missing ones and save them. Without a folder
 * the ids are made afresh (and say so in the log): they then last one run.
 *
 * @param overrides Thing name → id from the config; these are used as they are.
 */
export async function resolveThingIdentities(
  folder: string | undefined,
  names: readonly string[],
  overrides: ReadonlyMap<string, string>,
  logger: ThingLogger,
): Promise<ResolvedIdentities> {
  const file = folder === undefined ? undefined : join(folder, IDENTITY_FILE);
  const saved = file === undefined ? {} : await readIdentityFile(file, logger);
  const things = new Map<string, string>();
  const kept: Record<string, string> = { ...saved.things };
  let changed = saved.server === undefined;
  const server = saved.server ?? newThingId();
  for (const name of names) {
    const configured = overrides.get(name);
    if (configured !== undefined) {
      things.set(name, configured);
      continue;
    }
    let id = kept[name];
    if (typeof id !== "string" || id === "") {
      id = newThingId();
      kept[name] = id;
      changed = true;
    }
    things.set(name, id);
  }
  if (file === undefined) {
    logger.debug("no settings folder: Thing Description ids last this run only");
  } else if (changed) {
    try {
      await mkdir(folder!, { recursive: true });
      // Ids of Things no longer configured are kept: the Thing may come back.
      await writeFileAtomically(file, `${JSON.stringify({ server, things: kept }, null, 2)}\n`);
    } catch (error) {
      logger.error(
        { err: error, file },
        `could not save Thing Description ids to ${file}: they will change at the next start`,
      );
    }
  }
  return { server, things };
}

async function readIdentityFile(file: string, logger: ThingLogger): Promise<ThingIdentityFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (isIdentityFile(parsed)) return parsed;
  } catch {}
  // Never overwrite what was there: move it aside, loudly.
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  await rename(file, aside);
  logger.error(
    { file, movedTo: aside },
    `${file} is not a Thing id file: moved to ${aside}; new ids are made`,
  );
  return {};
}

function isIdentityFile(value: unknown): value is ThingIdentityFile {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const { server, things } = value as Record<string, unknown>;
  if (server !== undefined && typeof server !== "string") return false;
  if (things === undefined) return true;
  return (
    typeof things === "object" &&
    things !== null &&
    !Array.isArray(things) &&
    Object.values(things).every((id) => typeof id === "string")
  );
}
