/**
 * ThingClient against real servers on 127.0.0.1: our ThingServer running the simulated
 * microscope and a small test Thing (properties, Problem Details errors, observation with
 * a reconnect through a TCP proxy that cuts the connection, actions with progress, log,
 * cancel and AbortSignal, events, Thing-wide feeds of every property and every event
 * (one stream, or one per affordance merged), blobs, MJPEG streams and snapshots), a scripted SSE
 * server for the exact event-stream rules (event/data/id/retry, 204 ends it), and the
 * built client loaded as native ES modules in headless Chromium.
 *
 * The Chromium test loads `dist/`: run `npm run build` before running this file on its own.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/index.js";
import {
  AffordanceNotFoundError,
  ConnectionError,
  HttpError,
  InvocationCancelledError,
  InvocationFailedError,
  type InvocationUpdate,
  ProtocolError,
  readMjpegFrames,
  SseParser,
  ThingClient,
} from "../src/client/index.js";
import { event, property, Thing, ThingEvent, ThingServer, Type } from "../src/index.js";
import { until } from "./support/actions-http.js";
import { iterateInBackground, iterateOnceOpen } from "./support/background-iteration.js";
import { withChromium } from "./support/chromium.js";
import { ClientBench } from "./support/client-test-things.js";
import { getJson } from "./support/json-http.js";
import { microscopeEntries, SMALL_CAMERA } from "./support/microscope.js";
import { ScriptedSseServer } from "./support/scripted-sse-server.js";
import { TcpProxy } from "./support/tcp-proxy.js";
import { deferred, within } from "./support/within.js";

interface Position {
  x: number;
  y: number;
  z: number;
}

const JPEG_SOI = [0xff, 0xd8];
const JPEG_EOI = [0xff, 0xd9];
const startsWith = (bytes: Uint8Array, prefix: number[]) =>
  prefix.every((byte, i) => bytes[i] === byte);
const endsWith = (bytes: Uint8Array, suffix: number[]) =>
  suffix.every((byte, i) => bytes[bytes.length - suffix.length + i] === byte);

/** Reconnect quickly in tests: the default first wait is a second. */
const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: 5 };

let server: ThingServer;
let base: string;
let stage: SimulatedStage;
let bench: ClientBench;

beforeAll(async () => {
  stage = new SimulatedStage();
  bench = new ClientBench();
  server = new ThingServer(
    [
      ...microscopeEntries({ stage, camera: SMALL_CAMERA, autofocus: true }),
      { name: "bench", thing: bench },
    ],
    { port: 0, cors: true },
  );
  base = await server.start();
});

afterAll(async () => {
  bench.openAllGates();
  const report = await within(server.close(), "server.close()");
  expect(report.abandonedInvocations).toEqual([]);
});

const connect = (thing: string) =>
  ThingClient.connect(`${base}/${thing}/`, { reconnect: FAST_RECONNECT });

describe("connect", () => {
  it("fetches and checks the TD, and resolves hrefs against its base", async () => {
    const client = await connect("stage");
    expect(client.title).toBe("Simulated stage");
    expect(client.base).toBe(`${base}/stage/`);
    expect(Object.keys(client.description.actions)).toEqual(["moveRelative", "moveAbsolute"]);
  });

  it("fails clearly on something that is not a TD", async () => {
    // The index page is HTML; a property's value is JSON but not a TD.
    await expect(ThingClient.connect(`${base}/`)).rejects.toThrow(ProtocolError);
    const notTd = ThingClient.connect(`${base}/stage/travelRange`);
    await expect(notTd).rejects.toThrow(ProtocolError);
    await expect(notTd).rejects.toThrow(/'title' must be a non-empty string/);
    expect(() =>
      ThingClient.fromDescription(
        { title: "x", properties: { p: { type: "number", forms: [{ op: "readproperty" }] } } },
        base,
      ),
    ).toThrow(/'properties\.p\.forms\[0\]\.href' must be a string/);
  });

  it("an unknown Thing is an HttpError carrying the server's Problem Details", async () => {
    const error = await ThingClient.connect(`${base}/nothing/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(404);
    expect((error as HttpError).problem).toMatchObject({ status: 404, title: "Not Found" });
  });

  it("an unreachable server is a ConnectionError", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await expect(ThingClient.connect(`http://127.0.0.1:${port}/stage/`)).rejects.toThrow(
      ConnectionError,
    );
  });
});

describe("properties", () => {
  it("reads and writes, following the TD's forms", async () => {
    const camera = await connect("camera");
    await camera.writeProperty("exposureTime", 25_000);
    expect(await camera.readProperty<number>("exposureTime")).toBe(25_000);
    expect(await getJson(`${base}/camera/exposureTime`)).toBe(25_000);
    await camera.writeProperty("colourGains", { red: 1.5, blue: 2 });
    expect(await camera.readProperty("colourGains")).toEqual({ red: 1.5, blue: 2 });
  });

  it("a refused write is an HttpError with the Problem Details fields, and changes nothing", async () => {
    const camera = await connect("camera");
    await camera.writeProperty("exposureTime", 30_000);
    const error = await camera.writeProperty("exposureTime", 2_000_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    const { status, problem, message } = error as HttpError;
    expect(status).toBe(400);
    expect(problem).toMatchObject({
      type: "tag:labthings-ts,2026:invalid-input",
      title: "Bad Request",
      status: 400,
      instance: "/camera/exposureTime",
      errors: [{ field: "/exposureTime", rule: "maximum" }],
    });
    expect(problem?.detail).toMatch(/must be <= 1000000/);
    expect(message).toContain(problem?.detail);
    expect(await camera.readProperty("exposureTime")).toBe(30_000);
  });

  it("names a property the TD does not have, and a writeOnly one cannot be read", async () => {
    const client = await connect("bench");
    await expect(client.readProperty("nothing")).rejects.toThrow(AffordanceNotFoundError);
    await expect(client.readProperty("nothing")).rejects.toThrow(/has no property 'nothing'/);
    await expect(client.readProperty("secret")).rejects.toThrow(/no form for 'readproperty'/);
    await client.writeProperty("secret", "sesame");
    expect(bench.secret).toBe("sesame");
    // A read-only property has no writeproperty form.
    const stageClient = await connect("stage");
    await expect(stageClient.writeProperty("position", { x: 1, y: 1, z: 1 })).rejects.toThrow(
      AffordanceNotFoundError,
    );
  });

  it("readAllProperties uses the readallproperties form, else reads each readable property", async () => {
    const client = await connect("bench");
    bench.counter = 7;
    await client.writeProperty("label", "all");
    const viaForm = await client.readAllProperties();
    expect(viaForm).toEqual({ counter: 7, label: "all" });

    // The same TD without its Thing-level forms: one readproperty per property, and the
    // writeOnly `secret` is not read.
    const { forms: _forms, ...withoutForms } = client.description;
    const perProperty = ThingClient.fromDescription(withoutForms, client.url);
    expect(await perProperty.readAllProperties()).toEqual({ counter: 7, label: "all" });
  });

  it("writeMultipleProperties writes all or nothing", async () => {
    const client = await connect("bench");
    await client.writeMultipleProperties({ counter: 3, label: "many" });
    expect(await client.readAllProperties()).toEqual({ counter: 3, label: "many" });
    const error = await client
      .writeMultipleProperties({ counter: 4, label: "x".repeat(50) })
      .catch((e: unknown) => e);
    expect((error as HttpError).status).toBe(400);
    expect(await client.readAllProperties()).toEqual({ counter: 3, label: "many" });
  });
});

describe("observeProperty", () => {
  it("yields each change until the signal aborts", async () => {
    const client = await connect("bench");
    const controller = new AbortController();
    const observed = await iterateOnceOpen((onOpen) =>
      client.observeProperty<number>("counter", { signal: controller.signal, onOpen }),
    );
    for (let i = 101; i <= 105; i++) bench.counter = i;
    expect(await observed.waitFor(5, "five changes")).toEqual([101, 102, 103, 104, 105]);
    controller.abort();
    await within(observed.done, "the iteration to end on abort");
  });

  it("reconnects with Last-Event-ID after the connection is cut, losing no change", async () => {
    const proxy = await TcpProxy.start(Number(new URL(base).port));
    const controller = new AbortController();
    try {
      // Through the proxy: the TD's base (built from the Host header) points at it too.
      const client = await ThingClient.connect(`${proxy.url}/bench/`, {
        reconnect: FAST_RECONNECT,
      });
      expect(client.base).toBe(`${proxy.url}/bench/`);
      let opens = 0;
      const openedOnce = deferred();
      const observed = iterateInBackground(
        client.observeProperty<number>("counter", {
          signal: controller.signal,
          onOpen: () => {
            opens += 1;
            openedOnce.resolve();
          },
        }),
      );
      await within(openedOnce.promise, "the event stream to open");
      bench.counter = 201;
      bench.counter = 202;
      await observed.waitFor(2, "the first two changes");

      // The link drops; the client's reconnect is held at the proxy while three changes happen.
      proxy.hold();
      proxy.cutAll();
      bench.counter = 203;
      bench.counter = 204;
      bench.counter = 205;
      await proxy.waitForHeld(1);
      proxy.release();
      expect(await observed.waitFor(5, "the changes missed while disconnected")).toEqual([
        201, 202, 203, 204, 205,
      ]);
      bench.counter = 206;
      expect(await observed.waitFor(6, "a live change after the reconnect")).toEqual([
        201, 202, 203, 204, 205, 206,
      ]);
      expect(opens).toBe(2);
      // The request after the cut carried Last-Event-ID (and asked for an event stream).
      const requests = proxy.sent.flatMap((text) => text.split(/(?=^GET )/m));
      const observations = requests.filter((request) => request.startsWith("GET /bench/counter"));
      expect(observations).toHaveLength(2);
      expect(observations[0]).not.toMatch(/^last-event-id:/im);
      expect(observations[1]).toMatch(/^last-event-id: \d+\r$/im);
      expect(observations[1]).toMatch(/^accept: text\/event-stream\r$/im);
      controller.abort();
      await within(observed.done, "the iteration to end on abort");
    } finally {
      controller.abort();
      await proxy.close();
    }
  });

  it("when the server goes away: a stream ends cleanly, an observation gives up with ConnectionError", async () => {
    const leavingBench = new ClientBench();
    const leaving = new ThingServer(
      [
        ...microscopeEntries({ camera: { width: 160, height: 120, fps: 10 } }),
        { name: "bench", thing: leavingBench },
      ],
      { port: 0 },
    );
    const url = await leaving.start();
    const controller = new AbortController();
    try {
      const reconnect = { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 };
      const benchClient = await ThingClient.connect(`${url}/bench/`, { reconnect });
      const camera = await ThingClient.connect(`${url}/camera/`);
      const observed = await iterateOnceOpen((onOpen) =>
        benchClient.observeProperty<number>("counter", { signal: controller.signal, onOpen }),
      );
      const frames = iterateInBackground(camera.stream("stream", { signal: controller.signal }));
      await frames.waitFor(1, "a first frame");
      leavingBench.counter = 1;
      await observed.waitFor(1, "a change");
      await within(leaving.close(), "server.close()");
      // The MJPEG stream got its closing delimiter: the iteration just ends.
      await within(frames.done, "the stream iteration to end");
      // The event stream ended too; the reconnects find nobody, and the iteration says so.
      const error = await within(
        observed.done.then(
          () => undefined,
          (e: unknown) => e,
        ),
        "the observation to give up",
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).toMatch(/could not be re-opened after 3 attempts/);
      expect(observed.values).toEqual([1]);
    } finally {
      controller.abort();
      await within(leaving.close(), "server.close()");
    }
  });

  it("honours event, data, id and retry, and stops when a reconnect is answered 204", async () => {
    const sse = await ScriptedSseServer.start([
      // A comment, a retry time, a message with two data lines, and one split across CR/LF
      // kinds; then the server ends the stream.
      {
        events:
          ': hello\nretry: 40\n\nevent: tick\ndata: {"n":\ndata: 1}\nid: 7\n\r\n' +
          'event: tick\r\ndata: {"n":2}\rid: 8\r\r',
      },
      // Reconnect: one more message, then end again.
      { events: 'event: tick\ndata: {"n":3}\nid: 9\n\n' },
      // Second reconnect: 204, "nothing more": the iteration ends.
      { status: 204 },
    ]);
    try {
      const td = {
        title: "Ticker",
        events: {
          tick: { forms: [{ href: "ticks", op: "subscribeevent", subprotocol: "sse" }] },
        },
      };
      const client = ThingClient.fromDescription(td, `${sse.url}/ticker/`, {
        reconnect: FAST_RECONNECT,
      });
      const ticks = iterateInBackground(client.subscribeEvent<{ n: number }>("tick"));
      await within(ticks.done, "the iteration to end after the 204");
      expect(ticks.values).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(sse.requests.map((headers) => headers["last-event-id"])).toEqual([
        undefined,
        "8",
        "9",
      ]);
      expect(sse.requests.every((headers) => headers.accept === "text/event-stream")).toBe(true);
      // retry: 40 replaced the 50 ms default (a loose lower bound: timers never fire early).
      expect(sse.requestTimes[1]! - sse.requestTimes[0]!).toBeGreaterThanOrEqual(35);
    } finally {
      await sse.close();
    }
  });

  it("a form that is not SSE (e.g. long polling) is reported, not guessed at", () => {
    const td = {
      title: "Longpoll",
      properties: {
        x: {
          type: "number",
          forms: [{ href: "x/observable", op: "observeproperty", subprotocol: "longpoll" }],
        },
      },
    };
    const client = ThingClient.fromDescription(td, `${base}/longpoll/`);
    const iterator = client.observeProperty("x")[Symbol.asyncIterator]();
    return expect(iterator.next()).rejects.toThrow(
      /no form for 'observeproperty' over server-sent/,
    );
  });
});

describe("actions", () => {
  it("result, progress updates and log records of an asynchronous invocation", async () => {
    const client = await connect("bench");
    const updates: InvocationUpdate[] = [];
    const handle = await client.invokeAction<{ counted: number }>(
      "count",
      { steps: 10, gate: "progress" },
      { onProgress: (update) => updates.push(update) },
    );
    expect(handle.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(handle.href).toBe(`${base}/action_invocations/${handle.id}`);
    const iterated = iterateInBackground(handle.progress());
    await until(() => updates.some((u) => u.fraction === 0.5), "progress to reach half way");
    expect(handle.status).toBe("running");
    bench.gate("progress").open();
    expect(await within(handle.result(), "the result")).toEqual({ counted: 10 });
    expect(handle.status).toBe("completed");
    await within(iterated.done, "progress() to end with the invocation");

    for (const seen of [updates, iterated.values]) {
      const fractions = seen.map((u) => u.fraction).filter((f) => f !== undefined);
      expect(fractions).toEqual([...fractions].sort((a, b) => a! - b!));
      expect(fractions.at(-1)).toBe(1);
      expect(seen.at(-1)?.status).toBe("completed");
      // Every log record exactly once, in order, across the updates.
      const messages = seen.flatMap((u) => u.log.map((record) => record.message));
      expect(messages).toEqual(Array.from({ length: 10 }, (_, i) => `step ${i + 1} of 10`));
    }
  });

  it("polling instead of SSE gives the same outcome", async () => {
    const client = await connect("bench");
    bench.gate("poll").open();
    const handle = await client.invokeAction(
      "count",
      { steps: 4, gate: "poll" },
      { watch: "poll" },
    );
    expect(await within(handle.result(), "the result")).toEqual({ counted: 4 });
    expect(handle.report.log?.map((record) => record.message)).toContain("step 4 of 4");
  });

  it("synchronous actions: 200 with the output, and 204", async () => {
    const client = await connect("bench");
    const sum = await client.invokeAction<number>("add", { a: 2, b: 3 });
    expect(sum.status).toBe("completed");
    expect(sum.id).toBeUndefined();
    expect(await sum.result()).toBe(5);
    const nothing = await client.invokeAction("noop");
    expect(await nothing.result()).toBeUndefined();
  });

  it("invalid input is refused before an invocation exists, with Problem Details", async () => {
    const client = await connect("bench");
    const error = await client
      .invokeAction("count", { steps: 1000, gate: "x" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).problem?.errors).toEqual([
      expect.objectContaining({ field: "/steps", rule: "maximum" }),
    ]);
  });

  it("a failed invocation rejects result() with InvocationFailedError and its Problem Details", async () => {
    const client = await connect("bench");
    const handle = await client.invokeAction("fail", { message: "the lamp is broken" });
    const error = await within(handle.result(), "the result").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvocationFailedError);
    const failed = error as InvocationFailedError;
    expect(failed.problem).toMatchObject({ title: "RangeError", detail: "the lamp is broken" });
    expect(failed.message).toContain("the lamp is broken");
    expect(failed.invocation.status).toBe("failed");
    expect(handle.status).toBe("failed");
  });

  /** Slow the stage down so a move lasts seconds, and start one; resolves once it moves. */
  async function startLongMove(client: ThingClient, options: { signal?: AbortSignal } = {}) {
    await client.writeProperty("speed", 1000);
    const from = await client.readProperty<Position>("position");
    const moving = deferred();
    const handle = await client.invokeAction<Position>(
      "moveRelative",
      { x: 8000 },
      {
        ...options,
        onProgress: (update) => {
          if ((update.fraction ?? 0) > 0.02) moving.resolve();
        },
      },
    );
    await within(moving.promise, "the stage to start moving");
    return { handle, from };
  }

  /** The stage has stopped short of the target: two reads a while apart agree. */
  async function expectStoppedShort(client: ThingClient, from: Position) {
    const stopped = await client.readProperty<Position>("position");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await client.readProperty<Position>("position")).toEqual(stopped);
    expect(stopped.x).toBeGreaterThan(from.x);
    expect(stopped.x).toBeLessThan(from.x + 8000);
  }

  it("cancel() stops a long stage move on the server", async () => {
    const client = await connect("stage");
    const { handle, from } = await startLongMove(client);
    await within(handle.cancel(), "cancel()");
    expect(handle.status).toBe("cancelled");
    const error = await within(handle.result(), "the result").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvocationCancelledError);
    await expectStoppedShort(client, from);
    expect((await getJson<{ status: string }>(handle.href!)).status).toBe("cancelled");
  });

  it("aborting the signal cancels on the server and rejects result() with the reason", async () => {
    const client = await connect("stage");
    const controller = new AbortController();
    const { handle, from } = await startLongMove(client, { signal: controller.signal });
    controller.abort();
    const error = await within(handle.result(), "the result").catch((e: unknown) => e);
    expect((error as Error).name).toBe("AbortError");
    expect(handle.status).toBe("cancelled");
    await expectStoppedShort(client, from);
    expect((await getJson<{ status: string }>(handle.href!)).status).toBe("cancelled");
  });
});

describe("events", () => {
  it("subscribeEvent yields the stage's limitReached", async () => {
    const client = await connect("stage");
    await client.writeProperty("speed", 20_000);
    const controller = new AbortController();
    const opened = deferred();
    const events = iterateInBackground(
      client.subscribeEvent<{ requested: Position; reached: Position }>("limitReached", {
        signal: controller.signal,
        onOpen: () => opened.resolve(),
      }),
    );
    try {
      await within(opened.promise, "the event stream to open");
      const { y, z } = await client.readProperty<Position>("position");
      const move = await client.invokeAction<Position>("moveAbsolute", { x: 20_000 });
      const [event] = await events.waitFor(1, "limitReached");
      expect(event).toEqual({ requested: { x: 20_000, y, z }, reached: { x: 10_000, y, z } });
      expect(await within(move.result(), "the move")).toEqual({ x: 10_000, y, z });
    } finally {
      controller.abort();
      await within(events.done, "the iteration to end on abort");
    }
  });
});

/** Two properties and two events, for the Thing-wide feeds. */
class Announcer extends Thing {
  static override title = "Announcer";

  @property({ schema: Type.Integer(), title: "Count" })
  accessor count = 0;

  @property({ schema: Type.String(), title: "Mode" })
  accessor mode = "idle";

  @event({ data: Type.Object({ n: Type.Integer() }), title: "Ticked" })
  readonly ticked = new ThingEvent<{ n: number }>();

  @event({ data: Type.String(), title: "Said" })
  readonly said = new ThingEvent<string>();
}

interface AnnouncerProperties {
  count: number;
  mode: string;
}

interface AnnouncerEvents {
  ticked: { n: number };
  said: string;
}

describe("observeAllProperties and subscribeAllEvents", () => {
  let announcerServer: ThingServer;
  let announcerBase: string;
  let announcer: Announcer;

  beforeAll(async () => {
    announcer = new Announcer();
    announcerServer = new ThingServer([{ name: "announcer", thing: announcer }], { port: 0 });
    announcerBase = await announcerServer.start();
  });

  afterAll(async () => {
    await within(announcerServer.close(), "the announcer server to close");
  });

  /** Follow both Thing-wide feeds of `client`; resolves once both streams are open. */
  async function followBoth(client: ThingClient, signal: AbortSignal) {
    let propertyOpens = 0;
    let eventOpens = 0;
    const propertiesOpen = deferred();
    const eventsOpen = deferred();
    const changes = iterateInBackground(
      client.observeAllProperties<AnnouncerProperties>({
        signal,
        onOpen: () => {
          propertyOpens += 1;
          propertiesOpen.resolve();
        },
      }),
    );
    const emissions = iterateInBackground(
      client.subscribeAllEvents<AnnouncerEvents>({
        signal,
        onOpen: () => {
          eventOpens += 1;
          eventsOpen.resolve();
        },
      }),
    );
    await within(propertiesOpen.promise, "the properties stream to open");
    await within(eventsOpen.promise, "the events stream to open");
    return { changes, emissions, opens: () => ({ propertyOpens, eventOpens }) };
  }

  it("observeAllProperties yields changes of two properties, named, in order, on one stream", async () => {
    const client = await ThingClient.connect(`${announcerBase}/announcer/`, {
      reconnect: FAST_RECONNECT,
    });
    const controller = new AbortController();
    const { changes, emissions } = await followBoth(client, controller.signal);
    announcer.count = 1;
    announcer.mode = "busy";
    announcer.count = 2;
    announcer.mode = "done";
    expect(await changes.waitFor(4, "four changes")).toEqual([
      { name: "count", value: 1 },
      { name: "mode", value: "busy" },
      { name: "count", value: 2 },
      { name: "mode", value: "done" },
    ]);
    // The name narrows the value's type.
    const first = changes.values[0]!;
    if (first.name === "count") expect(first.value + 1).toBe(2);
    controller.abort();
    await within(changes.done, "observeAllProperties to end on abort");
    await within(emissions.done, "subscribeAllEvents to end on abort");
  });

  it("subscribeAllEvents yields two different events, named, with their data", async () => {
    const client = await ThingClient.connect(`${announcerBase}/announcer/`, {
      reconnect: FAST_RECONNECT,
    });
    const controller = new AbortController();
    const { changes, emissions } = await followBoth(client, controller.signal);
    announcer.ticked.emit({ n: 1 });
    announcer.said.emit("hello");
    announcer.ticked.emit({ n: 2 });
    expect(await emissions.waitFor(3, "three events")).toEqual([
      { name: "ticked", data: { n: 1 } },
      { name: "said", data: "hello" },
      { name: "ticked", data: { n: 2 } },
    ]);
    // Events are not property changes.
    expect(changes.values).toEqual([]);
    controller.abort();
    await within(emissions.done, "subscribeAllEvents to end on abort");
    await within(changes.done, "observeAllProperties to end on abort");
  });

  it("aborting ends an idle iteration without an error, and so does leaving a for-await loop", async () => {
    const client = await ThingClient.connect(`${announcerBase}/announcer/`);
    const controller = new AbortController();
    const { changes, emissions } = await followBoth(client, controller.signal);
    controller.abort();
    await within(changes.done, "observeAllProperties to end on abort");
    await within(emissions.done, "subscribeAllEvents to end on abort");
    expect(changes.values).toEqual([]);
    expect(emissions.values).toEqual([]);
    // An already aborted signal: nothing is opened, the iteration just ends.
    const none = await client.observeAllProperties({ signal: controller.signal }).next();
    expect(none.done).toBe(true);

    const opened = deferred();
    const seen: string[] = [];
    const loop = (async () => {
      for await (const { name } of client.subscribeAllEvents({ onOpen: () => opened.resolve() })) {
        seen.push(name);
        break;
      }
    })();
    await within(opened.promise, "the events stream to open");
    announcer.said.emit("one");
    await within(loop, "the loop to end after break");
    expect(seen).toEqual(["said"]);
  });

  it("reconnects both feeds with Last-Event-ID after the connection is cut, losing nothing", async () => {
    const proxy = await TcpProxy.start(Number(new URL(announcerBase).port));
    const controller = new AbortController();
    try {
      const client = await ThingClient.connect(`${proxy.url}/announcer/`, {
        reconnect: FAST_RECONNECT,
      });
      const { changes, emissions, opens } = await followBoth(client, controller.signal);
      announcer.count = 10;
      announcer.said.emit("before");
      await changes.waitFor(1, "a change before the cut");
      await emissions.waitFor(1, "an event before the cut");

      // The link drops; both reconnects are held at the proxy while things happen.
      proxy.hold();
      proxy.cutAll();
      announcer.count = 11;
      announcer.mode = "away";
      announcer.ticked.emit({ n: 11 });
      announcer.said.emit("while away");
      await proxy.waitForHeld(2);
      proxy.release();
      expect(await changes.waitFor(3, "the changes missed while disconnected")).toEqual([
        { name: "count", value: 10 },
        { name: "count", value: 11 },
        { name: "mode", value: "away" },
      ]);
      expect(await emissions.waitFor(3, "the events missed while disconnected")).toEqual([
        { name: "said", data: "before" },
        { name: "ticked", data: { n: 11 } },
        { name: "said", data: "while away" },
      ]);
      announcer.mode = "back";
      announcer.ticked.emit({ n: 12 });
      expect((await changes.waitFor(4, "a live change after the reconnect")).at(-1)).toEqual({
        name: "mode",
        value: "back",
      });
      expect((await emissions.waitFor(4, "a live event after the reconnect")).at(-1)).toEqual({
        name: "ticked",
        data: { n: 12 },
      });
      expect(opens()).toEqual({ propertyOpens: 2, eventOpens: 2 });
      // One request per feed before the cut, one after it carrying Last-Event-ID.
      const requests = proxy.sent.flatMap((text) => text.split(/(?=^GET )/m));
      for (const path of ["/announcer/properties", "/announcer/events"]) {
        const feed = requests.filter((request) => request.startsWith(`GET ${path} `));
        expect(feed, path).toHaveLength(2);
        expect(feed[0]).not.toMatch(/^last-event-id:/im);
        expect(feed[1]).toMatch(/^last-event-id: \d+\r$/im);
        expect(feed[1]).toMatch(/^accept: text\/event-stream\r$/im);
      }
      controller.abort();
      await within(changes.done, "observeAllProperties to end on abort");
      await within(emissions.done, "subscribeAllEvents to end on abort");
    } finally {
      controller.abort();
      await proxy.close();
    }
  });

  it("without Thing-wide forms, merges one stream per property and per event", async () => {
    const connected = await ThingClient.connect(`${announcerBase}/announcer/`);
    const { forms: _forms, ...withoutForms } = connected.description;
    const client = ThingClient.fromDescription(withoutForms, connected.url, {
      reconnect: FAST_RECONNECT,
    });
    const controller = new AbortController();
    const { changes, emissions, opens } = await followBoth(client, controller.signal);
    announcer.count = 21;
    announcer.mode = "merged";
    announcer.count = 22;
    announcer.ticked.emit({ n: 21 });
    announcer.said.emit("merged");
    await changes.waitFor(3, "three changes over two streams");
    await emissions.waitFor(2, "two events over two streams");
    // Each stream keeps its own order; between streams, order of arrival.
    expect(changes.values.filter(({ name }) => name === "count")).toEqual([
      { name: "count", value: 21 },
      { name: "count", value: 22 },
    ]);
    expect(changes.values).toContainEqual({ name: "mode", value: "merged" });
    expect(emissions.values).toHaveLength(2);
    expect(emissions.values).toEqual(
      expect.arrayContaining([
        { name: "ticked", data: { n: 21 } },
        { name: "said", data: "merged" },
      ]),
    );
    // onOpen ran once, when every stream of a feed was open.
    expect(opens()).toEqual({ propertyOpens: 1, eventOpens: 1 });
    controller.abort();
    await within(changes.done, "the merged properties to end on abort");
    await within(emissions.done, "the merged events to end on abort");

    // Leaving a loop over the merged streams ends every one of them (the loop returns).
    const opened = deferred();
    const loop = (async () => {
      for await (const { name } of client.subscribeAllEvents({ onOpen: () => opened.resolve() })) {
        if (name === "said") break;
      }
    })();
    await within(opened.promise, "the merged event streams to open");
    announcer.said.emit("stop");
    await within(loop, "the loop over the merged streams to end after break");

    // A Thing with nothing to follow says so.
    const quiet = ThingClient.fromDescription(
      { title: "Quiet", properties: { x: { type: "number", forms: [{ href: "x" }] } } },
      `${announcerBase}/quiet/`,
    );
    await expect(quiet.observeAllProperties().next()).rejects.toThrow(
      /no form for 'observeallproperties' over server-sent events, nor a property with one/,
    );
    await expect(quiet.subscribeAllEvents().next()).rejects.toThrow(AffordanceNotFoundError);
  });
});

describe("blobs and streams", () => {
  it("downloads camera.capture's JPEG", async () => {
    const camera = await connect("camera");
    const capture = await camera.invokeAction<{ href: string; mediaType: string; size: number }>(
      "capture",
    );
    const reference = await within(capture.result(), "the capture");
    const { bytes, mediaType } = await camera.downloadBlob(reference);
    expect(mediaType).toBe("image/jpeg");
    expect(bytes.length).toBe(reference.size);
    expect(startsWith(bytes, JPEG_SOI)).toBe(true);
    expect(endsWith(bytes, JPEG_EOI)).toBe(true);
  });

  it("stream() yields whole JPEG frames from the TD's stream links; snapshot() the newest", async () => {
    const camera = await connect("camera");
    expect(camera.streamNames).toEqual(["stream", "preview"]);
    const controller = new AbortController();
    const frames: Uint8Array[] = [];
    for await (const jpeg of camera.stream("stream", { signal: controller.signal })) {
      frames.push(jpeg);
      if (frames.length === 3) controller.abort();
    }
    expect(frames).toHaveLength(3);
    for (const jpeg of frames) {
      expect(startsWith(jpeg, JPEG_SOI)).toBe(true);
      expect(endsWith(jpeg, JPEG_EOI)).toBe(true);
    }
    const snapshot = await camera.snapshot("stream");
    expect(startsWith(snapshot, JPEG_SOI) && endsWith(snapshot, JPEG_EOI)).toBe(true);
    await expect(camera.stream("nothing").next()).rejects.toThrow(AffordanceNotFoundError);
  });

  it("parts without Content-Length (advance_headers) are read by the JPEG's own markers", async () => {
    const url = `${base}/camera/preview?advance_headers=1`;
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    const frames: Uint8Array[] = [];
    try {
      for await (const jpeg of readMjpegFrames(response, url)) {
        frames.push(jpeg);
        if (frames.length === 3) break;
      }
    } finally {
      controller.abort();
    }
    expect(frames).toHaveLength(3);
    for (const jpeg of frames) {
      expect(startsWith(jpeg, JPEG_SOI) && endsWith(jpeg, JPEG_EOI)).toBe(true);
    }
  });
});

describe("parsers, however the bytes are split", () => {
  it("SseParser gives the same messages for every split of the text", () => {
    const text =
      ": comment\r\nevent: a\r\ndata: 1\r\nid: 1\r\n\r\n" +
      "data: two\ndata: lines\n\n" +
      'event: c\rdata: {"x":3}\rid: 3\r\r' +
      "retry: 250\nid\ndata:4\n\n" +
      "data: no end";
    const whole = new SseParser().push(text);
    expect(whole).toEqual([
      { event: "a", data: "1", lastEventId: "1" },
      { event: "message", data: "two\nlines", lastEventId: "1" },
      { event: "c", data: '{"x":3}', lastEventId: "3" },
      { event: "message", data: "4", lastEventId: "" },
    ]);
    for (let i = 0; i <= text.length; i++) {
      for (const j of [i, Math.min(text.length, i + 1), Math.min(text.length, i + 7)]) {
        const parser = new SseParser();
        const messages = [text.slice(0, i), text.slice(i, j), text.slice(j)].flatMap((piece) =>
          parser.push(piece),
        );
        expect(messages, `split at ${i} and ${j}`).toEqual(whole);
        expect(parser.retryMs).toBe(250);
      }
    }
  });

  it("readMjpegFrames reads the same frames from any chunking of a real stream's bytes", async () => {
    // Real parts from the server (with Content-Length, then without: advance_headers).
    const collect = async (query: string) => {
      const controller = new AbortController();
      const response = await fetch(`${base}/camera/stream${query}`, { signal: controller.signal });
      const reader = response.body!.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      let delimiters = 0;
      try {
        // Enough bytes for three frames and the start of a fourth.
        while (delimiters < 5) {
          const { done, value } = await within(reader.read(), "stream bytes");
          if (done) break;
          chunks.push(value);
          size += value.length;
          delimiters += Buffer.from(value).toString("latin1").split("--frame").length - 1;
        }
      } finally {
        controller.abort();
      }
      const bytes = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return { bytes, contentType: response.headers.get("content-type")! };
    };
    for (const query of ["", "?advance_headers=1"]) {
      const { bytes, contentType } = await collect(query);
      const framesOf = async (chunkSize: number) => {
        let offset = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (offset >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(offset, offset + chunkSize));
            offset += chunkSize;
          },
        });
        const response = new Response(body, { headers: { "content-type": contentType } });
        const frames: Uint8Array[] = [];
        for await (const jpeg of readMjpegFrames(response, "recorded")) frames.push(jpeg);
        return frames;
      };
      const reference = await framesOf(bytes.length);
      expect(reference.length, query).toBeGreaterThanOrEqual(3);
      for (const jpeg of reference) {
        expect(startsWith(jpeg, JPEG_SOI) && endsWith(jpeg, JPEG_EOI)).toBe(true);
      }
      for (const chunkSize of [1, 3, 64, 1000, 4099]) {
        const frames = await framesOf(chunkSize);
        expect(
          frames.map((f) => f.length),
          `${query} in chunks of ${chunkSize}`,
        ).toEqual(reference.map((f) => f.length));
      }
    }
  });
});

describe("with a bearer token", () => {
  it("sends the `headers` option with every request, event streams and invocations included", async () => {
    const token = "client-test-token-0123456789";
    const securedBench = new ClientBench();
    const secured = new ThingServer([{ name: "bench", thing: securedBench }], {
      port: 0,
      authToken: token,
    });
    const url = await secured.start();
    const controller = new AbortController();
    try {
      // The TD is public (it says a token is needed); everything else answers 401.
      const anonymous = await ThingClient.connect(`${url}/bench/`);
      expect(anonymous.description.securityDefinitions).toMatchObject({
        bearer_sc: { scheme: "bearer" },
      });
      const denied = await anonymous.readProperty("counter").catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(HttpError);
      expect(denied).toMatchObject({ status: 401, problem: { status: 401 } });

      const client = await ThingClient.connect(`${url}/bench/`, {
        headers: { authorization: `Bearer ${token}` },
        reconnect: FAST_RECONNECT,
      });
      await client.writeProperty("counter", 5);
      expect(await client.readProperty("counter")).toBe(5);
      const observed = await iterateOnceOpen((onOpen) =>
        client.observeProperty<number>("counter", { signal: controller.signal, onOpen }),
      );
      securedBench.counter = 6;
      expect(await observed.waitFor(1, "a change")).toEqual([6]);
      securedBench.gate("secured").open();
      const count = await client.invokeAction("count", { steps: 2, gate: "secured" });
      expect(await within(count.result(), "the result")).toEqual({ counted: 2 });
    } finally {
      controller.abort();
      securedBench.openAllGates();
      await within(secured.close(), "the secured server to close");
    }
  });
});

/**
 * Runs in the page, as plain JavaScript (a string, so the test runner's transforms never
 * touch it): imports the built client and uses it against the camera.
 */
const IN_PAGE = `async (thingUrl) => {
  const { ThingClient, HttpError } = await import("/client/index.js");
  const camera = await ThingClient.connect(thingUrl);
  await camera.writeProperty("analogGain", 3);
  const gain = await camera.readProperty("analogGain");
  const controller = new AbortController();
  let frames = 0;
  let firstByte = 0;
  for await (const jpeg of camera.stream("preview", { signal: controller.signal })) {
    firstByte = jpeg[0];
    frames += 1;
    if (frames === 2) controller.abort();
  }
  let problemStatus = 0;
  try {
    await camera.writeProperty("analogGain", 99);
  } catch (error) {
    problemStatus = error instanceof HttpError ? error.problem.status : -1;
  }
  return { title: camera.title, gain, frames, firstByte, problemStatus };
}`;

describe("in a browser", () => {
  const DIST_CLIENT = fileURLToPath(new URL("../dist/src/client/", import.meta.url));
  let files: Server;
  let filesUrl: string;

  /** The built modules, read once: complete files even if a build rewrites dist/ meanwhile. */
  const modules = new Map<string, Buffer>();

  /**
   * Read every dist/src/client/*.js. tsc ends each with a sourceMappingURL comment, so a
   * file without one is still being written by a concurrent build: read again, bounded.
   */
  async function readBuiltModules(): Promise<void> {
    await until(async () => {
      modules.clear();
      for (const name of await readdir(DIST_CLIENT)) {
        if (extname(name) !== ".js") continue;
        const body = await readFile(join(DIST_CLIENT, name));
        if (!body.toString("utf8").trimEnd().endsWith(`//# sourceMappingURL=${name}.map`)) {
          return false;
        }
        modules.set(name, body);
      }
      return modules.has("index.js");
    }, "complete built client modules in dist/src/client");
  }

  beforeAll(async () => {
    if (!existsSync(join(DIST_CLIENT, "index.js"))) {
      throw new Error(`${DIST_CLIENT} is not built: run 'npm run build' first (npm test does it)`);
    }
    await readBuiltModules();
    // Serve the built modules as they are: the browser must load them as native ES modules.
    files = createServer((request, response) => {
      const path = new URL(request.url!, "http://x").pathname;
      if (path === "/") {
        response
          .writeHead(200, { "content-type": "text/html" })
          .end("<!doctype html><title>client</title>");
        return;
      }
      const body = path.startsWith("/client/")
        ? modules.get(path.slice("/client/".length))
        : undefined;
      if (body === undefined) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { "content-type": "text/javascript" }).end(body);
    });
    await new Promise<void>((resolve) => files.listen(0, "127.0.0.1", resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    files?.closeAllConnections();
    await new Promise<void>((resolve) => (files ? files.close(() => resolve()) : resolve()));
  });

  it("dist/src/client loads as native ES modules in Chromium and talks to the server", async () => {
    await withChromium(async (browser) => {
      const page = await browser.newPage();
      const failures: string[] = [];
      page.on("pageerror", (error) => failures.push(error.message));
      await page.goto(filesUrl);
      // The page's origin differs from the server's: the server was started with cors: true.
      const result = await within(
        page.evaluate(`(${IN_PAGE})(${JSON.stringify(`${base}/camera/`)})`),
        "the client to run in the page",
      );
      expect(failures).toEqual([]);
      expect(result).toEqual({
        title: "Simulated camera",
        gain: 3,
        frames: 2,
        firstByte: 0xff,
        problemStatus: 400,
      });
    });
  });
});
