/**
 * Stable Thing Description ids: a `urn:uuid:` made once per Thing (and one for the server's
 * own TD), kept in the settings folder, the same after a restart; an id from the config
 * wins; a damaged id file is moved aside, never overwritten.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load-config.js";
import { property, Thing, type ThingEntry, ThingServer, Type } from "../src/index.js";
import { LogCapture } from "./support/log-capture.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";

class Sensor extends Thing {
  static override title = "Sensor";
  @property({ schema: Type.Number(), readOnly: true })
  accessor reading = 0;
}

const ID_FILE = "thing-ids.labthings.json";

async function ids(entries: ThingEntry[], settingsDir: string, logger = new LogCapture().logger) {
  const server = new ThingServer(entries, { port: 0, settingsDir, logger });
  const base = await server.start();
  try {
    const read = async (path: string) =>
      ((await (await fetch(`${base}${path}`)).json()) as { id: string }).id;
    const things = Object.fromEntries(
      await Promise.all(entries.map(async ({ name }) => [name, await read(`/${name}/`)] as const)),
    );
    return { server: await read("/.well-known/wot"), things };
  } finally {
    await server.close();
  }
}

afterAll(removeTempDirs);

describe("Thing Description ids", () => {
  it("are made once, kept in the settings folder and the same after a restart", async () => {
    const dir = await tempDir("labthings-ids-");
    const entries = () => [
      { name: "left", thing: new Sensor() },
      { name: "right", thing: new Sensor() },
    ];
    const first = await ids(entries(), dir);
    expect(first.things.left).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    expect(new Set([first.server, first.things.left, first.things.right]).size).toBe(3);
    const saved = JSON.parse(await readFile(join(dir, ID_FILE), "utf8")) as unknown;
    expect(saved).toEqual({ server: first.server, things: first.things });
    expect(await ids(entries(), dir)).toEqual(first);
    // A Thing taken out of the config keeps its id for when it comes back.
    await ids([{ name: "left", thing: new Sensor() }], dir);
    expect(await ids(entries(), dir)).toEqual(first);
  });

  it("an id from the config wins and is used as it is", async () => {
    const dir = await tempDir("labthings-ids-");
    const { things } = await ids(
      [{ name: "left", thing: new Sensor(), id: "urn:dev:ops:32473-sensor-1" }],
      dir,
    );
    expect(things.left).toBe("urn:dev:ops:32473-sensor-1");
    expect(() =>
      validateConfig({ things: { left: { class: "./sensor.ts#Sensor", id: "not a uri" } } }),
    ).toThrow(/config things\.left\.id: must match /);
  });

  it("a damaged id file is moved aside (never overwritten), logged, and new ids are made", async () => {
    const dir = await tempDir("labthings-ids-");
    await writeFile(join(dir, ID_FILE), "{ not json");
    const logs = new LogCapture("error");
    const made = await ids([{ name: "left", thing: new Sensor() }], dir, logs.logger);
    expect(made.things.left).toMatch(/^urn:uuid:/);
    const files = await readdir(dir);
    const aside = files.find((file) => file.startsWith(`${ID_FILE}.corrupt-`))!;
    expect(await readFile(join(dir, aside), "utf8")).toBe("{ not json");
    expect(logs.lines.some((line) => line.msg.includes("is not a Thing id file: moved to"))).toBe(
      true,
    );
  });
});
