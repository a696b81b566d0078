/**
 * Interoperability with node-wot (Eclipse Thingweb's TypeScript WoT runtime) as a client:
 * software nobody on this project wrote fetches, validates and consumes the TDs of the
 * simulated microscope (stage, camera, autofocus) and of a small Thing with a synchronous
 * action, then reads and writes properties and invokes actions through the TDs' forms,
 * against a real ThingServer on 127.0.0.1. Every answer is checked against a plain HTTP
 * request to the same server.
 *
 * What node-wot 0.9 can and cannot do as an HTTP client (so what is checked here, and how):
 * - `requestThingDescription` validates the TD against node-wot's TD JSON Schema (it throws
 *   "TD validation error" otherwise); `consume` builds a client from its forms.
 * - `invokeAction` returns the first response only: it treats our 201 like a 200 and
 *   ignores `Location`, and `value()` of an asynchronous action is our ActionStatus (node-wot
 *   skips output validation unless the TD says `synchronous: true`). It cannot query or
 *   cancel an invocation (`query()`/`cancel()` throw "Not yet implemented"), so the tests
 *   poll the ActionStatus `href` over plain HTTP until the invocation has finished.
 * - Its SSE client listens only to unnamed messages (`EventSource.onmessage`), while the
 *   WoT SSE Profile wants every message named (`event:`), and it takes the first form
 *   whose `op` fits. Our TDs list first a form whose stream sends each message named and
 *   again unnamed (same id), so `observeProperty` and `subscribeEvent` work unchanged:
 *   checked here against what the server itself published, change for change.
 * - It reads all properties with one GET each; streams are TD links, never properties,
 *   so such a read never hangs on an endless MJPEG response.
 */
// node-wot's binding is CommonJS: from ESM only its default import is reliable.
import HttpBinding from "@node-wot/binding-http";
import { Servient } from "@node-wot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedStage } from "../examples/microscope/stage.js";
import { type ActionStatus, action, property, Thing, ThingServer, Type } from "../src/index.js";
import type { Notification } from "../src/runtime/observation-hub.js";
import { FINISHED, invoke, pollFinished, until } from "./support/actions-http.js";
import { getJson } from "./support/json-http.js";
import { microscopeEntries, SMALL_CAMERA } from "./support/microscope.js";
import { within } from "./support/within.js";

type WoTRuntime = Awaited<ReturnType<Servient["start"]>>;
type ConsumedThing = Awaited<ReturnType<WoTRuntime["consume"]>>;
type ThingDescription = Awaited<ReturnType<WoTRuntime["requestThingDescription"]>>;

interface Position {
  x: number;
  y: number;
  z: number;
}

const ScaleInput = Type.Object(
  {
    values: Type.Array(Type.Number(), { maxItems: 100 }),
    factor: Type.Number({ minimum: -1000, maximum: 1000 }),
  },
  { additionalProperties: false },
);
const ScaleOutput = Type.Object(
  { values: Type.Array(Type.Number()), sum: Type.Number() },
  { additionalProperties: false },
);

/** A Thing of this test only: a synchronous action whose input and output are checked. */
class Calculator extends Thing {
  static override title = "Calculator";

  @property({ schema: Type.Integer({ minimum: 0, maximum: 10 }), title: "Precision" })
  accessor precision = 3;

  /** Synchronous: the POST answers 200 with the output, which node-wot validates. */
  @action({ input: ScaleInput, output: ScaleOutput, synchronous: true, title: "Scale" })
  async scale(input: { values: number[]; factor: number }) {
    const round = (n: number) => Number(n.toFixed(this.precision));
    const values = input.values.map((v) => round(v * input.factor));
    return { values, sum: round(values.reduce((a, b) => a + b, 0)) };
  }
}

const THINGS = ["stage", "camera", "autofocus", "calculator"] as const;

/** Bound of an invocation poll, and of a test that waits for one: generous on a loaded machine. */
const ACTION_WAIT_MS = 45_000;
const ACTION_TEST_MS = 60_000;

describe("node-wot as a client of labthings-ts", () => {
  let server: ThingServer;
  let base: string;
  let servient: Servient;
  let wot: WoTRuntime;
  const descriptions = new Map<string, ThingDescription>();
  const consumed = new Map<string, ConsumedThing>();

  beforeAll(async () => {
    server = new ThingServer(
      [
        ...microscopeEntries({ camera: SMALL_CAMERA, autofocus: true }),
        { name: "calculator", thing: new Calculator() },
      ],
      { port: 0 },
    );
    base = await server.start();
    servient = new Servient();
    servient.addClientFactory(new HttpBinding.HttpClientFactory());
    wot = await servient.start();
  });

  afterAll(async () => {
    await servient?.shutdown();
    const report = await within(server.close(), "server.close()");
    expect(report.abandonedInvocations).toEqual([]);
  });

  /** The Thing as node-wot consumed it in the first test. */
  function thing(name: string): ConsumedThing {
    const found = consumed.get(name);
    if (!found) throw new Error(`node-wot has not consumed '${name}' (did the first test fail?)`);
    return found;
  }

  /** A property's value read by node-wot: `readProperty` then `value()` (schema-checked). */
  async function read(name: string, property: string): Promise<unknown> {
    return (await thing(name).readProperty(property)).value();
  }

  /** What the server published for `thing`/`name` from now on (the ground truth). */
  function published(thingName: string, name: string): { values: unknown[]; stop: () => void } {
    const values: unknown[] = [];
    const stop = server.observation.subscribe(
      (n: Notification) => n.thing === thingName && n.name === name && n.kind !== "action",
      (n) => values.push(n.data),
    );
    return { values, stop };
  }

  /**
   * node-wot's view of a property or event from now on: each value as its
   * InteractionOutput gives it (schema-checked), in the order the listener was called.
   */
  async function heardByNodeWot(
    subscribe: (listener: (output: { value(): Promise<unknown> }) => void) => Promise<{
      stop(): Promise<void>;
    }>,
  ): Promise<{ values: () => Promise<unknown[]>; count: () => number; stop: () => Promise<void> }> {
    const outputs: Promise<unknown>[] = [];
    const subscription = await subscribe((output) => outputs.push(output.value()));
    return {
      values: () => Promise.all(outputs),
      count: () => outputs.length,
      stop: () => subscription.stop(),
    };
  }

  /** Poll the invocation that an asynchronous POST created until it has finished. */
  async function finishedStatus(created: unknown, ms = ACTION_WAIT_MS): Promise<ActionStatus> {
    const status = created as ActionStatus;
    expect(status.href).toBe(`/action_invocations/${status.id}`);
    return pollFinished(base, status.id, ms);
  }

  it("fetches, validates and consumes every Thing's TD", async () => {
    const listed = await getJson<Record<string, string>>(`${base}/things/`);
    expect(Object.keys(listed).sort()).toEqual([...THINGS].sort());
    for (const name of THINGS) {
      // requestThingDescription validates against node-wot's TD schema and throws if invalid.
      const td = await wot.requestThingDescription(listed[name]!);
      const served = await getJson<ThingDescription>(`${base}/${name}/`);
      expect(td.title).toBe(served.title);
      expect(Object.keys(td.properties ?? {})).toEqual(Object.keys(served.properties ?? {}));
      expect(Object.keys(td.actions ?? {})).toEqual(Object.keys(served.actions ?? {}));
      const consumedThing = await wot.consume(td);
      expect(consumedThing.getThingDescription().title).toBe(served.title);
      descriptions.set(name, td);
      consumed.set(name, consumedThing);
    }
    expect(Object.keys(descriptions.get("stage")!.actions ?? {})).toContain("moveRelative");
    expect(Object.keys(descriptions.get("camera")!.properties ?? {})).toContain("exposureTime");
  });

  it("reads every readable property with the value a plain GET gives", async () => {
    let count = 0;
    for (const name of THINGS) {
      for (const [property, affordance] of Object.entries(
        descriptions.get(name)!.properties ?? {},
      )) {
        if (affordance.writeOnly) continue;
        const direct = await getJson(`${base}/${name}/${property}`);
        expect(await read(name, property), `${name}/${property}`).toEqual(direct);
        count++;
      }
    }
    // stage: position, speed, travelRange; camera: six; calculator: precision.
    expect(count).toBeGreaterThanOrEqual(10);
  });

  it("reads all and several properties at once (readAllProperties, readMultipleProperties)", async () => {
    for (const name of ["stage", "camera"]) {
      const direct = await getJson<Record<string, unknown>>(`${base}/${name}/properties`);
      const all = await thing(name).readAllProperties();
      const values: Record<string, unknown> = {};
      for (const [property, output] of all) values[property] = await output.value();
      expect(values, name).toEqual(direct);
    }
    const some = await thing("camera").readMultipleProperties(["exposureTime", "colourGains"]);
    expect([...some.keys()].sort()).toEqual(["colourGains", "exposureTime"]);
    expect(await some.get("colourGains")!.value()).toEqual(
      await getJson(`${base}/camera/colourGains`),
    );
  });

  it("writes properties, and a plain GET sees the new values", async () => {
    const writes: [string, string, unknown][] = [
      ["stage", "speed", 5000],
      ["camera", "exposureTime", 25_000],
      ["camera", "analogGain", 2.5],
      ["camera", "colourGains", { red: 1.25, blue: 1.75 }],
      ["calculator", "precision", 2],
    ];
    for (const [name, property, value] of writes) {
      await thing(name).writeProperty(property, value as never);
      expect(await getJson(`${base}/${name}/${property}`), `${name}/${property}`).toEqual(value);
      expect(await read(name, property), `${name}/${property} read back`).toEqual(value);
    }
  });

  it("a write that breaks the schema is refused and changes nothing", async () => {
    const refused: [string, string, unknown][] = [
      ["camera", "exposureTime", 2_000_000], // above its maximum
      ["camera", "colourGains", { red: 1, blue: 1, green: 1 }], // an unknown key
      ["stage", "speed", "fast"], // not a number
    ];
    for (const [name, property, value] of refused) {
      const before = await getJson(`${base}/${name}/${property}`);
      // node-wot turns our 400 Problem Details into "Client error: Bad Request".
      await expect(thing(name).writeProperty(property, value as never)).rejects.toThrow(
        /Bad Request/,
      );
      expect(await getJson(`${base}/${name}/${property}`), `${name}/${property}`).toEqual(before);
    }
  });

  it("invokes stage.moveRelative: the ActionStatus it returns leads to a completed move", {
    timeout: ACTION_TEST_MS,
  }, async () => {
    const from = await getJson<Position>(`${base}/stage/position`);
    const displacement = { x: 40, y: -25 };
    // node-wot returns the body of our 201 (it ignores Location): the ActionStatus.
    const created = await (await thing("stage").invokeAction(
      "moveRelative",
      displacement,
    ))!.value();
    expect(created).toMatchObject({ thing: "stage", action: "moveRelative", input: displacement });
    const done = await finishedStatus(created);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const expected = { x: from.x + 40, y: from.y - 25, z: from.z };
    expect(done.output).toEqual(expected);
    expect(await getJson(`${base}/stage/position`)).toEqual(expected);
    expect(await read("stage", "position")).toEqual(expected);
  });

  it("invokes camera.capture: the output's blob href serves a JPEG", {
    timeout: ACTION_TEST_MS,
  }, async () => {
    const created = await (await thing("camera").invokeAction("capture"))!.value();
    const done = await finishedStatus(created);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const blob = done.output as { href: string; mediaType: string; size: number };
    expect(blob.mediaType).toBe("image/jpeg");
    const response = await fetch(new URL(blob.href, base));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/jpeg");
    const jpeg = Buffer.from(await response.arrayBuffer());
    expect(jpeg.length).toBe(blob.size);
    expect([...jpeg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]); // SOI + a marker
    expect([...jpeg.subarray(-2)]).toEqual([0xff, 0xd9]); // EOI
  });

  it("invokes autofocus.run with a small sweep: it completes where it says", {
    timeout: ACTION_TEST_MS,
  }, async () => {
    const created = await (await thing("autofocus").invokeAction("run", {
      range: 200,
      steps: 3,
    }))!.value();
    const done = await finishedStatus(created);
    expect(FINISHED.has(done.status)).toBe(true);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const result = done.output as { z: number; scores: unknown[] };
    expect(result.scores).toHaveLength(3 + 11); // the coarse sweep, then the fine one
    expect((await getJson<Position>(`${base}/stage/position`)).z).toBe(result.z);
  });

  it("observeProperty hears every change of stage.position during a move, in order, once each", {
    timeout: ACTION_TEST_MS,
  }, async () => {
    const truth = published("stage", "position");
    const heard = await heardByNodeWot((listener) =>
      thing("stage").observeProperty("position", listener),
    );
    const from = await getJson<Position>(`${base}/stage/position`);
    const move = await invoke(base, "stage/moveRelative", { x: 600 });
    const done = await finishedStatus(move);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    truth.stop();
    await until(() => heard.count() >= truth.values.length, "node-wot to hear every position");
    const values = (await heard.values()) as Position[];
    // At 2000 steps/s with a tick every 20 ms, a 600-step move is some 15 positions.
    expect(truth.values.length).toBeGreaterThanOrEqual(5);
    expect(values).toEqual(truth.values);
    const xs = values.map((p) => p.x);
    for (let i = 1; i < xs.length; i++) expect(xs[i]!).toBeGreaterThanOrEqual(xs[i - 1]!);
    expect(values.at(-1)).toEqual({ ...from, x: from.x + 600 });
    await heard.stop();
  });

  it("observeProperty hears 30 writes made in one go, in order; after unobserving, nothing", async () => {
    const stage = server.registry.get("stage").thing as SimulatedStage;
    const heard = await heardByNodeWot((listener) =>
      thing("stage").observeProperty("speed", listener),
    );
    const speeds = Array.from({ length: 30 }, (_, i) => 3000 + i * 10);
    for (const speed of speeds) stage.speed = speed;
    await until(() => heard.count() >= speeds.length, "node-wot to hear 30 speeds");
    expect(await heard.values()).toEqual(speeds);

    await heard.stop();
    // Unsubscribed: a later change reaches a plain observer, not node-wot's listener.
    const later = published("stage", "speed");
    stage.speed = 4321;
    expect(later.values).toEqual([4321]);
    later.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard.count()).toBe(speeds.length);
  });

  it("subscribeEvent hears every limitReached, in order, with its data", {
    timeout: ACTION_TEST_MS,
  }, async () => {
    const stage = server.registry.get("stage").thing as SimulatedStage;
    const heard = await heardByNodeWot((listener) =>
      thing("stage").subscribeEvent("limitReached", listener),
    );
    // One from a real move asked to go past the travel limit, then ten emitted at once.
    const from = await getJson<Position>(`${base}/stage/position`);
    const move = await invoke(base, "stage/moveAbsolute", { y: 10_050 });
    const expected: unknown[] = [
      { requested: { ...from, y: 10_050 }, reached: { ...from, y: 10_000 } },
    ];
    for (let i = 1; i <= 10; i++) {
      const data = { requested: { x: 0, y: 0, z: 20_000 + i }, reached: { x: 0, y: 0, z: 10_000 } };
      stage.limitReached.emit(data);
      expected.push(data);
    }
    await until(() => heard.count() >= expected.length, "node-wot to hear 11 events");
    expect(await heard.values()).toEqual(expected);
    await heard.stop();
    await fetch(`${base}/action_invocations/${move.id}`, { method: "DELETE" });
  });

  it("a synchronous action's input and output round-trip (node-wot validates the output)", async () => {
    expect(descriptions.get("calculator")!.actions?.scale?.synchronous).toBe(true);
    await thing("calculator").writeProperty("precision", 2);
    const output = await thing("calculator").invokeAction("scale", {
      values: [1.5, -2, 0.125],
      factor: 3,
    });
    expect(await output!.value()).toEqual({ values: [4.5, -6, 0.38], sum: -1.12 });
    // No invocation is left running, and a bad input is refused before one exists.
    await expect(
      thing("calculator").invokeAction("scale", { values: [1], factor: 5000 }),
    ).rejects.toThrow(/Bad Request/);
  });
});
