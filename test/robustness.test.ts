/**
 * Faults inside Things, against real servers on 127.0.0.1 (issue 6, item 7): each gives
 * a clear error to whoever can act on it, and the rest of the server keeps working.
 *
 * - a camera driver pushing broken frames (not a JPEG, truncated, empty);
 * - a property getter that throws (a sensor unplugged);
 * - a Thing whose start() rejects (degraded start: the others still serve, its URLs
 *   answer 503 naming the failure);
 * - actions that throw synchronously, reject with a non-Error value, or break their
 *   output schema in a synchronous action.
 *
 * Covered elsewhere, not repeated here: event data breaking its schema throws to the
 * emitting code and reaches no subscriber (observation.test.ts, "events"); a viewer that
 * never reads its MJPEG stream does not slow the others (mjpeg-stream.test.ts,
 * "fan-out"); an async action that throws or returns a bad output (actions.test.ts).
 */
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/index.js";
import {
  type ActionStatus,
  action,
  InvalidInputError,
  MjpegStream,
  mjpegStream,
  property,
  Thing,
  type ThingEntry,
  ThingServer,
  type ThingServerOptions,
  Type,
  UnavailableError,
} from "../src/index.js";
import { RFC3339, statusOf } from "./support/actions-http.js";
import { getJson, postJson, putJson } from "./support/json-http.js";
import { LogCapture } from "./support/log-capture.js";
import { microscopeEntries, TINY_CAMERA } from "./support/microscope.js";
import { connectMjpeg, type MjpegTestClient } from "./support/mjpeg-parser.js";
import { expectProblem } from "./support/problem.js";
import { within } from "./support/within.js";

// ─── servers ─────────────────────────────────────────────────────────────────────────

/** Servers a test started, closed after it; suites close their own in afterAll. */
const perTest = new Set<ThingServer>();
const viewers: MjpegTestClient[] = [];

async function startServer(
  entries: ThingEntry[],
  options: ThingServerOptions = {},
  closeAfter: "test" | "suite" = "test",
): Promise<{ server: ThingServer; url: string }> {
  const server = new ThingServer(entries, { port: 0, ...options });
  if (closeAfter === "test") perTest.add(server);
  const url = await within(server.start(), "the server to start");
  return { server, url };
}

async function closeServer(server: ThingServer | undefined): Promise<void> {
  if (server) await within(server.close(), "server.close()");
}

afterEach(async () => {
  for (const viewer of viewers.splice(0)) viewer.destroy();
  await Promise.all([...perTest].map(closeServer));
  perTest.clear();
});

/** A Thing with one plain property: "the rest of the server". */
class Lamp extends Thing {
  @property({ schema: Type.Number({ minimum: 0, maximum: 1 }) })
  accessor brightness = 0.5;
}

/** The rest of the server still reads, writes and describes. */
async function expectLampWorks(url: string): Promise<void> {
  expect((await putJson(`${url}/lamp/brightness`, 0.25)).status).toBe(204);
  expect(await getJson(`${url}/lamp/brightness`)).toBe(0.25);
  expect((await getJson<{ title: string }>(`${url}/lamp/`)).title).toEqual(expect.any(String));
  expect((await putJson(`${url}/lamp/brightness`, 0.5)).status).toBe(204);
}

// ─── (a) a camera driver pushing broken frames ───────────────────────────────────────

/** A camera whose driver is the test: it pushes whatever bytes the test gives it. */
class DriverCamera extends Thing {
  // No re-sends during the test: every part a viewer gets is a frame the driver pushed.
  @mjpegStream({ title: "Live view" })
  readonly stream = new MjpegStream({ resendAfterMs: 60_000 });

  @property({ schema: Type.Integer({ minimum: 1 }) })
  accessor exposure = 100;
}

function jpeg(background: string): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background } })
    .jpeg()
    .toBuffer();
}

describe("a camera driver pushing broken frames", () => {
  it("gets an error naming the problem; viewers and snapshots keep the good frames; the server keeps serving", async () => {
    const camera = new DriverCamera();
    const { url } = await startServer([
      { name: "camera", thing: camera },
      { name: "lamp", thing: new Lamp() },
    ]);
    const [first, next] = await Promise.all([jpeg("#336699"), jpeg("#993366")]);
    const pushedFirst = camera.stream.pushFrame(first);
    for (let i = 0; i < 2; i++) viewers.push(await connectMjpeg(`${url}/camera/stream`));
    for (const viewer of viewers) {
      expect(viewer.status).toBe(200);
      expect((await viewer.part(0)).jpeg.equals(first)).toBe(true);
    }

    const broken: [string, Uint8Array][] = [
      ["text, not a JPEG", Buffer.from("<html>camera error</html>")],
      ["a JPEG cut off before its end", next.subarray(0, next.length - 100)],
      ["an empty buffer", Buffer.alloc(0)],
      ["zeros in a Uint8Array", new Uint8Array(4096)],
      ["only the start-of-image marker", Buffer.from([0xff, 0xd8])],
    ];
    for (const [what, bytes] of broken) {
      let thrown: unknown;
      try {
        camera.stream.pushFrame(bytes);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, what).toBeInstanceOf(InvalidInputError);
      // The driver's author reads this: what was expected, and what arrived.
      expect((thrown as Error).message, what).toMatch(/JPEG/);
      expect((thrown as Error).message, what).toContain(`${bytes.length} bytes`);
      // Between broken frames the snapshot is still the last good one.
      const snapshot = await fetch(`${url}/camera/stream/snapshot`);
      expect(snapshot.status).toBe(200);
      expect(Buffer.from(await snapshot.arrayBuffer()).equals(first), what).toBe(true);
    }
    expect(camera.stream.latestFrame).toBe(pushedFirst);
    await expectLampWorks(url);
    expect(await getJson(`${url}/camera/exposure`)).toBe(100);

    // The next good frame reaches every viewer, numbered right after the first:
    // rejected frames took no sequence number, so no viewer sees a gap.
    camera.stream.pushFrame(next);
    for (const viewer of viewers) {
      const part = await viewer.part(1);
      expect(part.jpeg.equals(next)).toBe(true);
      expect(Number(part.headers["x-sequence"])).toBe(pushedFirst.sequence + 1);
      expect(viewer.parts).toHaveLength(2);
      expect(viewer.protocolErrors).toEqual([]);
      expect(viewer.outcome).toBeUndefined();
    }
    const snapshot = await fetch(`${url}/camera/stream/snapshot`);
    expect(Buffer.from(await snapshot.arrayBuffer()).equals(next)).toBe(true);
    expect(await getJson(`${url}/camera/stream/stats`)).toMatchObject({
      framesPushed: 2,
      framesRejected: broken.length,
    });
  });

  it("a driver that is not TypeScript-checked (null, a string) gets an error and the stream carries on", async () => {
    const camera = new DriverCamera();
    const { url } = await startServer([{ name: "camera", thing: camera }]);
    const good = await jpeg("#669933");
    for (const wrong of [null, undefined, "not bytes", 42]) {
      expect(() => camera.stream.pushFrame(wrong as unknown as Buffer)).toThrow();
    }
    camera.stream.pushFrame(good);
    const snapshot = await fetch(`${url}/camera/stream/snapshot`);
    expect(snapshot.status).toBe(200);
    expect(Buffer.from(await snapshot.arrayBuffer()).equals(good)).toBe(true);
  });
});

// ─── (b) a property getter that throws ───────────────────────────────────────────────

const SENSOR_FAULT = "no answer from the sensor on /dev/ttyUSB3";

/** A Thing whose `temperature` getter fails the way a driver does when unplugged. */
class Thermometer extends Thing {
  @property({ schema: Type.Number(), readOnly: true })
  get temperature(): number {
    throw new Error(SENSOR_FAULT);
  }

  /** Throws a value that is not an Error (some driver libraries do). */
  @property({ schema: Type.Number(), readOnly: true })
  get humidity(): number {
    throw "checksum mismatch";
  }

  /** Says "not now" the framework's way: answered as 503 with its message. */
  @property({ schema: Type.Number(), readOnly: true })
  get pressure(): number {
    throw new UnavailableError("the barometer is warming up");
  }

  @property({ schema: Type.String() })
  accessor label = "bench 3";
}

describe("a property getter that throws", () => {
  let server: ThingServer;
  let url: string;
  let logs: LogCapture;

  beforeAll(async () => {
    logs = new LogCapture("error");
    ({ server, url } = await startServer(
      [
        { name: "thermometer", thing: new Thermometer() },
        { name: "lamp", thing: new Lamp() },
      ],
      { logger: logs.logger },
      "suite",
    ));
  });

  afterAll(() => closeServer(server));

  it("GET answers 500 Problem Details for that property, no stack trace; the log has the error and its stack", async () => {
    for (const name of ["temperature", "humidity"]) {
      const response = await fetch(`${url}/thermometer/${name}`);
      const problem = await expectProblem(response, 500);
      expect(problem.instance).toBe(`/thermometer/${name}`);
      // What failed and the driver's own words (as for a failed action); never a stack.
      expect(problem.detail).toMatch(new RegExp(`^reading 'thermometer/${name}' failed: .+`));
    }
    const logged = await logs.waitFor(
      (line) => JSON.stringify(line).includes(SENSOR_FAULT),
      "the getter's error in the server log",
    );
    expect(JSON.stringify(logged)).toContain("/thermometer/temperature");
    expect((logged.err as { stack?: string }).stack).toMatch(/\n\s+at /);
  });

  // Found by this test: the detail was the generic "The server failed to handle this request".
  it("the 500's detail names the Thing and the property whose getter failed", async () => {
    const problem = await expectProblem(await fetch(`${url}/thermometer/temperature`), 500);
    expect(problem.detail).toContain("thermometer");
    expect(problem.detail).toContain("temperature");
  });

  it("a getter that throws UnavailableError answers 503 with its message", async () => {
    const problem = await expectProblem(await fetch(`${url}/thermometer/pressure`), 503);
    expect(problem.detail).toBe("the barometer is warming up");
    expect(problem.type).toBe("tag:labthings-ts,2026:unavailable");
  });

  it("readallproperties fails as a whole with the same 500 (one getter spoils the read of all)", async () => {
    const problem = await expectProblem(await fetch(`${url}/thermometer/properties`), 500);
    expect(problem.instance).toBe("/thermometer/properties");
  });

  it("the Thing's other properties, its TD, other Things and writes keep working", async () => {
    expect(await getJson(`${url}/thermometer/label`)).toBe("bench 3");
    expect((await putJson(`${url}/thermometer/label`, "bench 4")).status).toBe(204);
    expect(await getJson(`${url}/thermometer/label`)).toBe("bench 4");
    const td = await getJson<{ properties: Record<string, unknown> }>(`${url}/thermometer/`);
    expect(Object.keys(td.properties)).toEqual(
      expect.arrayContaining(["temperature", "humidity", "pressure", "label"]),
    );
    await expectLampWorks(url);
    // Many failing reads in a row change nothing either.
    const failing = await Promise.all(
      Array.from({ length: 50 }, () => fetch(`${url}/thermometer/temperature`)),
    );
    for (const response of failing) await expectProblem(response, 500);
    await expectLampWorks(url);
  });
});

// ─── (c) a Thing whose start() rejects ───────────────────────────────────────────────

const INTERLOCK = "interlock open: cannot arm the laser";

/** Hardware that cannot be opened: start() rejects. */
class Laser extends Thing {
  @property({ schema: Type.Number({ minimum: 0, maximum: 100 }) })
  accessor power = 0;

  @action({ output: Type.String() })
  async fire() {
    return "fired";
  }

  override async start() {
    throw new Error(INTERLOCK);
  }
}

/** A stage whose motor controller is not connected. */
class UnpluggedStage extends SimulatedStage {
  override async start() {
    throw new Error("no motor controller on /dev/ttyACM0");
  }
}

// The CLI side (the log names the Thing and the reason, --require-all) is in
// cli.test.ts; the registry's bookkeeping in thing-model.test.ts.
describe("a Thing whose start() rejects (degraded start)", () => {
  it("the others serve; every URL of the failed Thing answers 503 naming it and the reason; nothing reaches it", async () => {
    const logs = new LogCapture("warn");
    const laser = new Laser();
    const { server, url } = await startServer(
      [
        { name: "laser", thing: laser },
        { name: "lamp", thing: new Lamp() },
      ],
      { logger: logs.logger },
    );
    await expectLampWorks(url);

    const json = { "content-type": "application/json" };
    const requests: [string, RequestInit][] = [
      ["/laser/", {}],
      ["/laser/power", {}],
      ["/laser/power", { method: "PUT", body: "5", headers: json }],
      ["/laser/power", { headers: { accept: "text/event-stream" } }],
      ["/laser/fire", { method: "POST" }],
      ["/laser/properties", {}],
      ["/laser/properties", { method: "PUT", body: '{"power":5}', headers: json }],
      ["/laser/events", { headers: { accept: "text/event-stream" } }],
      ["/laser/ws", {}],
      ["/laser/no-such-affordance", {}],
    ];
    for (const [path, init] of requests) {
      const what = `${init.method ?? "GET"} ${path}`;
      const problem = await expectProblem(await fetch(`${url}${path}`, init), 503);
      expect(problem.detail, what).toContain("'laser'");
      expect(problem.detail, what).toContain(INTERLOCK);
    }
    // The refused write and invocation never reached the Thing.
    expect(laser.power).toBe(0);
    expect(await getJson(`${url}/action_invocations/`)).toEqual([]);
    expect(await getJson(`${url}/things/`)).toEqual({ lamp: `${url}/lamp/` });

    const line = await logs.waitFor(
      (l) => l.thing === "laser" && JSON.stringify(l).includes(INTERLOCK),
      "the start failure in the log, naming the Thing",
    );
    expect(line.level).toBeGreaterThanOrEqual(40); // warn or error: an operator must see it

    const report = await within(server.close(), "server.close()");
    expect(report).toMatchObject({ hungThings: [], failedThings: [], forced: false });
  });

  it("a failed stage takes the camera and autofocus (whose slots hold it) out too, each saying why", async () => {
    const { url } = await startServer([
      ...microscopeEntries({
        stage: new UnpluggedStage(),
        camera: { ...TINY_CAMERA, fps: 1 },
        autofocus: true,
      }),
      { name: "lamp", thing: new Lamp() },
    ]);
    const stage = await expectProblem(await fetch(`${url}/stage/position`), 503);
    expect(stage.detail).toContain("no motor controller on /dev/ttyACM0");
    for (const path of ["/camera/stream", "/camera/stream/snapshot", "/camera/exposureTime"]) {
      const problem = await expectProblem(await fetch(`${url}${path}`), 503);
      expect(problem.detail, path).toContain("'camera'");
      expect(problem.detail, path).toContain("'stage'");
    }
    const autofocus = await expectProblem(await postJson(`${url}/autofocus/run`, {}), 503);
    expect(autofocus.detail).toContain("'autofocus'");
    await expectLampWorks(url);
  });
});

// ─── (d) actions that fail in odd ways ───────────────────────────────────────────────

const Steps = Type.Object({ steps: Type.Integer() }, { additionalProperties: false });

class Faulty extends Thing {
  /** Not async: throws before any promise exists. Holds the "motor" lock. */
  @action({ lock: "motor" })
  jam(): void {
    throw new RangeError("the motor jammed at step 12");
  }

  @action({ lock: "motor", output: Type.String() })
  async move() {
    return "moved";
  }

  @action()
  async rejectWithString() {
    throw "motor stalled";
  }

  @action()
  async rejectWithUndefined() {
    // A rejection without a value.
    return Promise.reject(undefined);
  }

  @action()
  async rejectWithObject() {
    throw { code: "E42", axis: "z" };
  }

  @action({ synchronous: true, output: Steps })
  async countSync() {
    return { steps: "twelve" } as unknown as { steps: number };
  }

  @action({ synchronous: true })
  throwSync(): void {
    throw new TypeError("no driver loaded");
  }
}

describe("actions that throw synchronously, reject with non-Errors, or break their output schema", () => {
  let server: ThingServer;
  let url: string;

  beforeAll(async () => {
    ({ server, url } = await startServer(
      [
        { name: "faulty", thing: new Faulty() },
        { name: "lamp", thing: new Lamp() },
      ],
      {},
      "suite",
    ));
  });

  afterAll(() => closeServer(server));

  async function failedInvocation(path: string): Promise<ActionStatus> {
    const response = await postJson(`${url}/${path}`);
    expect(response.status, path).toBe(201);
    const { id } = (await response.json()) as ActionStatus;
    await within(server.invocations.get(id).settled, `${path} to settle`);
    const status = await statusOf(url, id);
    expect(status.status, path).toBe("failed");
    expect(status.timeEnded).toMatch(RFC3339);
    expect(status.output).toBeUndefined();
    expect(status.error).toMatchObject({ status: 500, type: expect.any(String) });
    expect(status.error!.title).not.toBe("");
    expect(JSON.stringify(status.error)).not.toMatch(/\n\s+at |\\n\s+at /);
    return status;
  }

  it("a synchronous throw fails the invocation with its message and releases the action's lock", async () => {
    const jammed = await failedInvocation("faulty/jam");
    expect(jammed.error).toMatchObject({
      title: "RangeError",
      detail: "the motor jammed at step 12",
    });
    // The "motor" lock was released: the next locked action runs to completion.
    const response = await postJson(`${url}/faulty/move`);
    const { id } = (await response.json()) as ActionStatus;
    await within(server.invocations.get(id).settled, "the move after the jam");
    expect(await statusOf(url, id)).toMatchObject({ status: "completed", output: "moved" });
  });

  it("a rejection with a string or undefined fails the invocation with a non-empty title and detail", async () => {
    const stalled = await failedInvocation("faulty/rejectWithString");
    expect(stalled.error!.detail).toBe("motor stalled");
    const nothing = await failedInvocation("faulty/rejectWithUndefined");
    expect(nothing.error!.detail).not.toBe("");
    await expectLampWorks(url);
  });

  // Found by this test: the client read "[object Object]" with the title "object".
  it("a rejection with a plain object shows its content in the detail", async () => {
    const failed = await failedInvocation("faulty/rejectWithObject");
    expect(failed.error!.detail).toContain("E42");
    expect(failed.error!.title).not.toBe("object");
  });

  it("a synchronous action whose output breaks its schema answers 500 Problem Details saying so", async () => {
    const problem = await expectProblem(await postJson(`${url}/faulty/countSync`), 500);
    expect(problem.detail).toMatch(/schema/);
    expect(problem.detail).toContain("/countSync/steps");
    expect(problem.instance).toMatch(/^\/action_invocations\/[0-9a-f-]+$/);
  });

  it("a synchronous action that throws before returning a promise answers 500 Problem Details", async () => {
    const problem = await expectProblem(await postJson(`${url}/faulty/throwSync`), 500);
    expect(problem).toMatchObject({ title: "TypeError", detail: "no driver loaded" });
    await expectLampWorks(url);
    expect((await fetch(`${url}/faulty/`)).status).toBe(200);
  });
});
