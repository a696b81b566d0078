import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ActionContext, observeEvents, ThingClient, ThingServer } from "labthings-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lamp } from "../src/lamp.js";

describe("the Lamp on its own (no server)", () => {
  it("blinks: toggles `on`, reports progress, emits `blinked`", async () => {
    const lamp = new Lamp();
    const fractions: number[] = [];
    const events: unknown[] = [];
    observeEvents(lamp, (name, data) => events.push({ name, data }));
    // Any object with these members is an ActionContext.
    const ctx: ActionContext = {
      id: "unit-test",
      signal: AbortSignal.timeout(5000),
      progress: (fraction) => fraction !== undefined && fractions.push(fraction),
      logger: lamp.logger,
      sleep: async () => {}, // no waiting in a unit test
    };
    await lamp.blink({ times: 2 }, ctx);
    expect(fractions).toEqual([0.25, 0.5, 0.75, 1]);
    expect(lamp.on).toBe(false);
    expect(events).toEqual([{ name: "blinked", data: { times: 2 } }]);
  });
});

describe("the Lamp over HTTP", () => {
  let server: ThingServer;
  let base: string;
  let settingsDir: string;

  beforeAll(async () => {
    settingsDir = await mkdtemp(join(tmpdir(), "lamp-settings-"));
    server = new ThingServer([{ name: "lamp", thing: new Lamp() }], { port: 0, settingsDir });
    base = await server.start();
  });
  afterAll(async () => {
    await server.close();
    await rm(settingsDir, { recursive: true, force: true });
  });

  it("publishes a Thing Description", async () => {
    const { description: td } = await ThingClient.connect(`${base}/lamp/`);
    expect(td.title).toBe("Lamp");
    expect(Object.keys(td.properties)).toEqual(["on", "brightness"]);
    expect(Object.keys(td.actions)).toEqual(["blink"]);
    expect(Object.keys(td.events)).toEqual(["blinked"]);
  });

  it("refuses a brightness above 1 and keeps the old one", async () => {
    const lamp = await ThingClient.connect(`${base}/lamp/`);
    await expect(lamp.writeProperty("brightness", 2)).rejects.toThrow(/maximum|<= 1/);
    await lamp.writeProperty("brightness", 0.8);
    expect(await lamp.readProperty("brightness")).toBe(0.8);
  });

  it("blinks when asked, with progress", async () => {
    const lamp = await ThingClient.connect(`${base}/lamp/`);
    const seen: number[] = [];
    const blink = await lamp.invokeAction(
      "blink",
      { times: 1 },
      { onProgress: ({ fraction }) => fraction !== undefined && seen.push(fraction) },
    );
    await blink.result();
    expect(blink.status).toBe("completed");
    expect(seen.at(-1)).toBe(1);
  });
});
