/**
 * Observation and events over the WoT HTTP SSE Profile and labthings-fastapi's websocket,
 * against a real ThingServer on 127.0.0.1 with real clients: the `eventsource` package,
 * raw node:http and TCP readers, and `ws`. Covers observeproperty, observeallproperties,
 * strict negotiation, subscribeevent / subscribeallevents with validated data,
 * Last-Event-ID replay, invocation updates over SSE, the websocket messages,
 * back-pressure (coalescing and dropping), shutdown with open clients, and the TD forms.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { SimulatedStage } from "../examples/microscope/index.js";
import { WEBSOCKET_PING_MS } from "../src/http/routes/websocket.js";
import {
  type ActionStatus,
  event,
  InvalidInputError,
  property,
  type Static,
  Thing,
  type ThingDescription,
  ThingEvent,
  ThingServer,
  Type,
} from "../src/index.js";
import { getJson, postJson, putJson } from "./support/json-http.js";
import { LogCapture } from "./support/log-capture.js";
import {
  closeObservationClients,
  parseSse,
  RawSseReader,
  RecordingEventSource,
  RecordingWebSocket,
} from "./support/observation-clients.js";
import { expectProblem } from "./support/problem.js";
import { parseResponses, RawConnection, rawGet } from "./support/raw-http.js";
import { within } from "./support/within.js";

const HTTP_SSE_PROFILE = "https://www.w3.org/2022/wot/profile/http-sse/v1";
const MB = 1024 * 1024;

// ─── Test Things ──────────────────────────────────────────────────────────────────────

const Sample = Type.Object(
  { n: Type.Integer(), pad: Type.String() },
  { additionalProperties: false },
);
type Sample = Static<typeof Sample>;

class Lamp extends Thing {
  @property({ schema: Type.Number({ minimum: 0, maximum: 1 }) })
  accessor brightness = 0.5;

  @property({ schema: Type.String() })
  accessor colour = "white";

  @property({ schema: Type.Boolean() })
  accessor on = false;

  @property({ schema: Type.Integer() })
  accessor count = 0;

  @property({ schema: Type.Integer(), observable: false })
  accessor secret = 0;

  @property({ schema: Sample, readOnly: true })
  accessor sample: Sample = { n: 0, pad: "" };
}

const AlarmData = Type.Object(
  { level: Type.Integer({ minimum: 0, maximum: 5 }), message: Type.String() },
  { additionalProperties: false },
);
type AlarmData = Static<typeof AlarmData>;

class Alarms extends Thing {
  @event({ data: AlarmData, title: "Alarm" })
  readonly alarm = new ThingEvent<AlarmData>();

  @event()
  readonly ping = new ThingEvent();

  @event({ data: Sample })
  readonly burst = new ThingEvent<Sample>();

  /** Emits through `Thing.emit` by name, as Thing code may. */
  raise(data: unknown): void {
    this.emit("alarm", data);
  }

  pingNow(): void {
    this.emit("ping");
  }
}

// ─── Server and log capture ───────────────────────────────────────────────────────────

let server: ThingServer;
let base: string;
let stage: SimulatedStage;
let lamp: Lamp;
let alarms: Alarms;
let logs: LogCapture;

beforeEach(async () => {
  stage = new SimulatedStage();
  lamp = new Lamp();
  alarms = new Alarms();
  logs = new LogCapture();
  server = new ThingServer(
    [
      { name: "stage", thing: stage },
      { name: "lamp", thing: lamp },
      { name: "alarms", thing: alarms },
    ],
    { port: 0, logger: logs.logger },
  );
  base = await server.start();
});

afterEach(async () => {
  closeObservationClients();
  await within(server.close(), "server.close()");
});

const wsUrl = (path: string) => `${base.replace(/^http/, "ws")}${path}`;
const port = () => Number(new URL(base).port);
const json = <T = unknown>(text: string) => JSON.parse(text) as T;

type Position = { x: number; y: number; z: number };

/** POST an asynchronous action; returns its ActionStatus and absolute invocation URL. */
async function invoke(path: string, body: unknown): Promise<{ status: ActionStatus; url: string }> {
  const response = await postJson(`${base}${path}`, body);
  expect(response.status, `POST ${path}`).toBe(201);
  const location = response.headers.get("location");
  expect(location).toBeTruthy();
  return { status: (await response.json()) as ActionStatus, url: new URL(location!, base).href };
}

/** Wait for an invocation to finish by following its SSE updates to the end. */
async function finished(url: string): Promise<ActionStatus> {
  const reader = await RawSseReader.open(url);
  expect(await within(reader.ended, `the update stream of ${url} to end`)).toBe("end");
  return json<ActionStatus>(reader.messages.at(-1)!.data);
}

function expectIncreasingIds(ids: readonly (string | undefined)[]): number[] {
  const numbers = ids.map(Number);
  for (const id of numbers) expect(Number.isInteger(id) && id > 0, `id ${id}`).toBe(true);
  for (let i = 1; i < numbers.length; i++) expect(numbers[i]!).toBeGreaterThan(numbers[i - 1]!);
  return numbers;
}

// ─── 1. observeproperty ───────────────────────────────────────────────────────────────

describe("observeproperty (GET /{thing}/{prop}, SSE)", () => {
  it("an EventSource receives position messages while moveRelative runs", async () => {
    const source = new RecordingEventSource(`${base}/stage/position`, ["position"]);
    await source.opened();
    await invoke("/stage/moveRelative", { x: 500 });
    await source.waitFor(
      () => source.received.some((m) => json<Position>(m.data).x === 500),
      "a position message with x = 500",
    );

    expect(source.received.length).toBeGreaterThanOrEqual(3);
    expect(source.unnamed).toEqual([]);
    const positions = source.received.map((m) => json<Position>(m.data));
    for (const message of source.received) expect(message.type).toBe("position");
    for (const position of positions) expect(position).toMatchObject({ y: 0, z: 0 });
    const xs = positions.map((p) => p.x);
    for (let i = 1; i < xs.length; i++) expect(xs[i]!).toBeGreaterThanOrEqual(xs[i - 1]!);
    expect(xs.at(-1)).toBe(500);
    expect(
      xs.some((x) => x > 0 && x < 500),
      `intermediate positions in ${xs}`,
    ).toBe(true);
    expectIncreasingIds(source.received.map((m) => m.lastEventId));
  });

  it("the wire format is `event: <prop>`, `data: <JSON>`, `id: <n>`", async () => {
    const reader = await RawSseReader.open(`${base}/lamp/brightness`);
    lamp.brightness = 0.75;
    await reader.waitForCount(1, "one brightness message");
    expect(reader.text).toMatch(/(^|\n)event: brightness\ndata: 0\.75\nid: \d+\n\n/);
    expect(reader.messages[0]).toMatchObject({ event: "brightness", data: "0.75" });
  });
});

// ─── 2. observeallproperties ──────────────────────────────────────────────────────────

describe("observeallproperties (GET /{thing}/properties, SSE)", () => {
  it("receives changes of several properties under their own names, HTTP writes included", async () => {
    const names = ["brightness", "colour", "on", "count", "secret", "sample", "position"];
    const source = new RecordingEventSource(`${base}/lamp/properties`, names);
    await source.opened();

    lamp.colour = "red";
    lamp.secret = 42; // not observable: never in the stream
    stage.position = { x: 1, y: 2, z: 3 }; // another Thing: never in this stream
    expect((await putJson(`${base}/lamp/brightness`, 0.25)).status).toBe(204);
    expect((await putJson(`${base}/lamp/properties`, { on: true, colour: "blue" })).status).toBe(
      204,
    );
    // A rejected write changes nothing and notifies nothing.
    expect((await putJson(`${base}/lamp/brightness`, 7)).status).toBe(400);
    lamp.count = 1;

    await source.waitFor(
      () => source.received.some((m) => m.type === "count"),
      "the count change that follows the writes",
    );
    const seen = source.received.map((m) => [m.type, json(m.data)]);
    expect(seen.slice(0, 2)).toEqual([
      ["colour", "red"],
      ["brightness", 0.25],
    ]);
    expect(seen.slice(2, 4)).toEqual(
      expect.arrayContaining([
        ["on", true],
        ["colour", "blue"],
      ]),
    );
    expect(seen.slice(4)).toEqual([["count", 1]]);
    expect(source.unnamed).toEqual([]);
    expectIncreasingIds(source.received.map((m) => m.lastEventId));
  });
});

// ─── 3. Strict negotiation ────────────────────────────────────────────────────────────

describe("strict negotiation", () => {
  it("*/*, a browser's Accept or no Accept get plain JSON; only text/event-stream gets SSE", async () => {
    for (const accept of [
      "*/*",
      "text/html,application/xhtml+xml,*/*;q=0.8",
      "application/json",
      "text/event-stream;q=0, application/json",
    ]) {
      const response = await fetch(`${base}/stage/position`, { headers: { accept } });
      expect(response.status, accept).toBe(200);
      expect(response.headers.get("content-type"), accept).toMatch(/^application\/json\b/);
      expect(await response.json()).toEqual({ x: 0, y: 0, z: 0 });
    }
    const bare = await rawGet(base, "/stage/position"); // node:http sends no Accept
    expect(bare.status).toBe(200);
    expect(bare.headers["content-type"]).toMatch(/^application\/json\b/);
    expect(JSON.parse(bare.body.toString())).toEqual({ x: 0, y: 0, z: 0 });

    const all = await fetch(`${base}/lamp/properties`, { headers: { accept: "*/*" } });
    expect(all.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(await all.json()).toMatchObject({ brightness: 0.5, colour: "white" });

    for (const path of ["/stage/position", "/lamp/properties"]) {
      const sse = await RawSseReader.open(`${base}${path}`);
      expect(sse.status, path).toBe(200);
      expect(sse.headers["content-type"], path).toMatch(/^text\/event-stream\b/);
      sse.close();
    }
  });

  it("SSE of a non-observable property is 406 Problem Details (reading it still works)", async () => {
    const response = await fetch(`${base}/lamp/secret`, {
      headers: { accept: "text/event-stream" },
    });
    await expectProblem(response, 406);
    expect(await getJson(`${base}/lamp/secret`)).toBe(0);
  });

  it("an event without the SSE Accept is 406 Problem Details", async () => {
    const variants: Record<string, string>[] = [
      {},
      { accept: "*/*" },
      { accept: "application/json" },
    ];
    for (const path of ["/alarms/alarm", "/alarms/events", "/stage/limitReached"]) {
      for (const headers of variants) {
        const response = await fetch(`${base}${path}`, { headers });
        await expectProblem(response, 406);
      }
      const bare = await rawGet(base, path);
      expect(bare.status, path).toBe(406);
      expect(bare.headers["content-type"]).toMatch(/^application\/problem\+json\b/);
    }
  });
});

// ─── 4. Events ────────────────────────────────────────────────────────────────────────

describe("events (subscribeevent, subscribeallevents)", () => {
  it("deliver validated data; invalid data throws InvalidInputError to the Thing and is not delivered", async () => {
    const one = new RecordingEventSource(`${base}/alarms/alarm`, ["alarm", "ping", "burst"]);
    const all = new RecordingEventSource(`${base}/alarms/events`, ["alarm", "ping", "burst"]);
    await one.opened();
    await all.opened();

    const before = server.observation.lastId;
    expect(() => alarms.alarm.emit({ level: 9, message: "too loud" })).toThrow(InvalidInputError);
    expect(() => alarms.raise({ level: 1 })).toThrow(InvalidInputError);
    expect(() => alarms.raise({ level: 1, message: "x", extra: true })).toThrow(InvalidInputError);
    try {
      alarms.raise({ level: "high", message: "x" });
      expect.unreachable("invalid event data must throw");
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as InvalidInputError).errors.length).toBeGreaterThan(0);
      expect((error as Error).message).toMatch(/alarm/);
    }
    expect(server.observation.lastId, "nothing was published").toBe(before);

    alarms.alarm.emit({ level: 3, message: "door open" });
    alarms.pingNow();
    alarms.raise({ level: 5, message: "fire" });

    await all.waitFor(() => all.received.length >= 3, "three events on /alarms/events");
    await one.waitFor(() => one.received.length >= 2, "two alarms on /alarms/alarm");
    expect(all.received.map((m) => [m.type, json(m.data)])).toEqual([
      ["alarm", { level: 3, message: "door open" }],
      ["ping", null],
      ["alarm", { level: 5, message: "fire" }],
    ]);
    expect(one.received.map((m) => [m.type, json(m.data)])).toEqual([
      ["alarm", { level: 3, message: "door open" }],
      ["alarm", { level: 5, message: "fire" }],
    ]);
    expect(one.unnamed).toEqual([]);
    expect(all.unnamed).toEqual([]);
    expectIncreasingIds(all.received.map((m) => m.lastEventId));
    expectIncreasingIds(one.received.map((m) => m.lastEventId));
  });

  it("the stage's limitReached fires when a move is clamped, not otherwise", async () => {
    expect((await putJson(`${base}/stage/speed`, 20000)).status).toBe(204);
    const one = new RecordingEventSource(`${base}/stage/limitReached`, ["limitReached"]);
    const all = new RecordingEventSource(`${base}/stage/events`, ["limitReached"]);
    await one.opened();
    await all.opened();

    const inRange = await invoke("/stage/moveAbsolute", { x: 100 });
    expect((await finished(inRange.url)).status).toBe("completed");
    const clamped = await invoke("/stage/moveAbsolute", { x: 999999 });
    await one.waitFor(() => one.received.length >= 1, "limitReached on /stage/limitReached");
    await all.waitFor(() => all.received.length >= 1, "limitReached on /stage/events");
    const expected = {
      requested: { x: 999999, y: 0, z: 0 },
      reached: { x: 10000, y: 0, z: 0 },
    };
    expect(json(one.received[0]!.data)).toEqual(expected);
    expect(json(all.received[0]!.data)).toEqual(expected);
    const done = await finished(clamped.url);
    expect(done).toMatchObject({ status: "completed", output: { x: 10000, y: 0, z: 0 } });
    expect(one.received).toHaveLength(1);
  });
});

// ─── 5. Last-Event-ID ─────────────────────────────────────────────────────────────────

describe("Last-Event-ID", () => {
  it("a reconnect gets the missed messages first, in order, then live ones", async () => {
    const source = new RecordingEventSource(`${base}/lamp/count`, ["count"]);
    await source.opened();
    lamp.count = 1;
    lamp.count = 2;
    lamp.count = 3;
    await source.waitFor(() => source.received.length >= 3, "three count messages");
    const lastSeen = Number(source.received[2]!.lastEventId);
    expect(source.received.map((m) => json(m.data))).toEqual([1, 2, 3]);
    source.close();

    // Missed while disconnected, with other properties' changes in between.
    lamp.count = 4;
    lamp.colour = "green";
    lamp.count = 5;
    lamp.brightness = 0.1;
    lamp.count = 6;

    const reader = await RawSseReader.open(`${base}/lamp/count`, {
      "last-event-id": String(lastSeen),
    });
    expect(reader.headers["content-type"]).toMatch(/^text\/event-stream\b/);
    await reader.waitForCount(3, "the three missed messages");
    lamp.count = 7;
    await reader.waitForCount(4, "the live message after the replay");
    expect(reader.messages.map((m) => [m.event, json(m.data)])).toEqual([
      ["count", 4],
      ["count", 5],
      ["count", 6],
      ["count", 7],
    ]);
    const ids = expectIncreasingIds(reader.messages.map((m) => m.id));
    expect(ids[0]!).toBeGreaterThan(lastSeen);

    // observeallproperties replays every property's missed changes, in order.
    const all = await RawSseReader.open(`${base}/lamp/properties`, {
      "last-event-id": String(lastSeen),
    });
    await all.waitForCount(6, "the missed changes of every property");
    expect(all.messages.map((m) => [m.event, json(m.data)])).toEqual([
      ["count", 4],
      ["colour", "green"],
      ["count", 5],
      ["brightness", 0.1],
      ["count", 6],
      ["count", 7],
    ]);
    expectIncreasingIds(all.messages.map((m) => m.id));
  });

  it("without Last-Event-ID nothing old is replayed", async () => {
    lamp.count = 10;
    const reader = await RawSseReader.open(`${base}/lamp/count`);
    lamp.count = 11;
    await reader.waitForCount(1, "the live message");
    expect(reader.messages.map((m) => json(m.data))).toEqual([11]);
  });
});

// ─── 6. Invocation updates ────────────────────────────────────────────────────────────

describe("GET /action_invocations/{id} with SSE", () => {
  it("streams status and progress of a running move and ends after the final status", async () => {
    const { status: created, url } = await invoke("/stage/moveRelative", { x: 1000 });
    const reader = await RawSseReader.open(url);
    expect(reader.status).toBe(200);
    expect(reader.headers["content-type"]).toMatch(/^text\/event-stream\b/);
    expect(await within(reader.ended, "the update stream to end")).toBe("end");

    const statuses = reader.messages.map((m) => json<ActionStatus>(m.data));
    expect(statuses.length).toBeGreaterThanOrEqual(3);
    for (const message of reader.messages) expect(message.event).toBe("moveRelative");
    for (const status of statuses) {
      expect(status).toMatchObject({ id: created.id, action: "moveRelative", thing: "stage" });
    }
    const final = statuses.at(-1)!;
    expect(final).toMatchObject({ status: "completed", output: { x: 1000, y: 0, z: 0 } });
    expect(final.timeEnded).toBeTruthy();
    for (const status of statuses.slice(0, -1))
      expect(["pending", "running"]).toContain(status.status);
    const fractions = statuses.flatMap((s) =>
      s.progress?.fraction === undefined ? [] : [s.progress.fraction],
    );
    expect(fractions.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < fractions.length; i++)
      expect(fractions[i]!).toBeGreaterThanOrEqual(fractions[i - 1]!);
    const ids = expectIncreasingIds(reader.messages.map((m) => m.id));
    const finalId = ids.at(-1)!;

    // Already finished: the final status, then the end.
    const again = await RawSseReader.open(url);
    expect(await within(again.ended, "the finished invocation's stream to end")).toBe("end");
    expect(again.messages).toHaveLength(1);
    expect(json<ActionStatus>(again.messages[0]!.data)).toMatchObject({
      id: created.id,
      status: "completed",
    });
    const againId = Number(again.messages[0]!.id);
    expect(againId).toBeGreaterThanOrEqual(finalId);

    // A Last-Event-ID before the end: the final status again.
    const early = await RawSseReader.open(url, { "last-event-id": String(ids[0]) });
    expect(await within(early.ended, "the stream after an early Last-Event-ID to end")).toBe("end");
    expect(early.messages.map((m) => json<ActionStatus>(m.data).status)).toEqual(["completed"]);

    // At or after the final message: 204, so EventSource stops reconnecting.
    for (const lastEventId of [finalId, againId, againId + 1000]) {
      const response = await fetch(url, {
        headers: { accept: "text/event-stream", "last-event-id": String(lastEventId) },
      });
      expect(response.status, `Last-Event-ID ${lastEventId}`).toBe(204);
      expect(await response.text()).toBe("");
    }
  });

  it("an EventSource gets the updates, and its reconnect after the end gets 204 and stops", async () => {
    const { url } = await invoke("/stage/moveRelative", { x: 400 });
    const source = new RecordingEventSource(url, ["moveRelative"]);
    await source.waitFor(
      () => source.received.some((m) => json<ActionStatus>(m.data).status === "completed"),
      "the completed status",
    );
    const count = source.received.length;
    // The stream ends (error, reconnecting), then the reconnect with Last-Event-ID gets 204.
    await source.waitFor(
      () => source.errors.some((e) => e.code === 204),
      "the reconnect to be answered 204",
      10_000,
    );
    expect(source.source.readyState).toBe(source.source.CLOSED);
    expect(source.errors[0]).toMatchObject({ readyState: source.source.CONNECTING });
    expect(source.received).toHaveLength(count);
    expect(json<ActionStatus>(source.received.at(-1)!.data).status).toBe("completed");
  });
});

// ─── 7. Websocket ─────────────────────────────────────────────────────────────────────

describe("WS /{thing}/ws (labthings-fastapi messages)", () => {
  type WsMessage = Record<string, unknown> & { messageType?: string; data?: unknown };
  const responses = (ws: RecordingWebSocket) =>
    (ws.received as WsMessage[]).filter((m) => m.messageType === "response");

  it("propertyStatus and actionStatus during a move; errors for bad requests keep the socket open", async () => {
    const ws = await RecordingWebSocket.open(wsUrl("/stage/ws"));
    ws.send("this is not JSON");
    await ws.waitFor(() => responses(ws).length >= 1, "the error response to a non-JSON message");
    expect(responses(ws)[0]).toMatchObject({
      messageType: "response",
      error: { status: "400", type: expect.any(String), title: expect.any(String) },
    });
    expect(ws.socket.readyState).toBe(WebSocket.OPEN);

    ws.send({ messageType: "addPropertyObservation", data: { position: true } });
    ws.send({ messageType: "addActionObservation", data: { moveRelative: true } });
    ws.send({ messageType: "addPropertyObservation", data: { nope: true } });
    ws.send({ messageType: "addActionObservation", data: { fly: true } });
    await ws.waitFor(() => responses(ws).length >= 3, "the errors for unknown names");
    expect(responses(ws)[1]).toEqual({
      messageType: "response",
      operation: "observeproperty",
      name: "nope",
      error: {
        status: "404",
        type: expect.any(String),
        title: expect.any(String),
        detail: expect.stringContaining("nope"),
      },
    });
    expect(responses(ws)[2]).toMatchObject({
      messageType: "response",
      operation: "observeaction",
      name: "fly",
      error: { status: "404" },
    });

    await invoke("/stage/moveRelative", { x: 300 });
    const isCompleted = (m: WsMessage) =>
      m.messageType === "actionStatus" && (m.data as ActionStatus).status === "completed";
    await ws.waitFor(() => ws.received.some(isCompleted), "the completed actionStatus");

    const positions = (ws.received as WsMessage[])
      .filter((m) => m.messageType === "propertyStatus")
      .map((m) => (m.data as { position: Position }).position);
    expect(positions.length).toBeGreaterThanOrEqual(3);
    const xs = positions.map((p) => p.x);
    for (let i = 1; i < xs.length; i++) expect(xs[i]!).toBeGreaterThanOrEqual(xs[i - 1]!);
    expect(xs.at(-1)).toBe(300);

    const statuses = (ws.received as WsMessage[])
      .filter((m) => m.messageType === "actionStatus")
      .map((m) => m.data as ActionStatus);
    const order = ["pending", "running", "completed"];
    const states = statuses.map((s) => s.status);
    expect(states[0]).toBe("pending");
    expect(states).toContain("running");
    expect(states.at(-1)).toBe("completed");
    for (let i = 1; i < states.length; i++) {
      expect(order.indexOf(states[i]!)).toBeGreaterThanOrEqual(order.indexOf(states[i - 1]!));
    }
    for (const status of statuses) expect(status.action).toBe("moveRelative");
    expect(statuses.at(-1)!.output).toEqual({ x: 300, y: 0, z: 0 });
    expect(ws.socket.readyState).toBe(WebSocket.OPEN);
  });

  it("a non-observable property is refused over the websocket", async () => {
    const ws = await RecordingWebSocket.open(wsUrl("/lamp/ws"));
    ws.send({ messageType: "addPropertyObservation", data: { secret: true, count: true } });
    await ws.waitFor(() => responses(ws).length >= 1, "the refusal for 'secret'");
    expect(responses(ws)[0]).toMatchObject({
      operation: "observeproperty",
      name: "secret",
      error: { status: "403" },
    });
    lamp.secret = 5;
    lamp.count = 9;
    await ws.waitFor(
      () => ws.received.some((m) => m.messageType === "propertyStatus"),
      "the count update",
    );
    expect(ws.received.filter((m) => m.messageType === "propertyStatus")).toEqual([
      { messageType: "propertyStatus", data: { count: 9 } },
    ]);
  });

  it("a plain HTTP GET of /{thing}/ws answers 426 Problem Details", async () => {
    const response = await fetch(`${base}/stage/ws`);
    expect(response.headers.get("upgrade")).toBe("websocket");
    await expectProblem(response, 426);
  });

  it("pings every client; one that stops answering is cut, one that answers stays", {
    timeout: 3 * WEBSOCKET_PING_MS,
  }, async () => {
    const answering = await RecordingWebSocket.open(wsUrl("/stage/ws"));
    let pings = 0;
    answering.socket.on("ping", () => pings++);
    // A peer that is gone (asleep, unplugged) reads nothing: it never answers a ping.
    const gone = await RawConnection.open(port());
    onTestFinished(() => void gone.socket.destroy());
    gone.socket.write(
      `GET /stage/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    // A ping frame: FIN + opcode 9, no payload.
    await gone.waitFor(
      (text) => /^HTTP\/1\.1 101 /.test(text) && text.endsWith("\u0089\u0000"),
      "a ping",
    );
    await within(gone.closed, "the silent peer being cut", WEBSOCKET_PING_MS + 5000);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
  });

  it("a websocket handshake answered over HTTP (a broken URL, an over-long one) ends its connection", async () => {
    // Node stops parsing a socket it emitted 'upgrade' for: after such an answer only the
    // server can close it, or a client waiting for the FIN (Python's websockets) hangs.
    for (const [path, status] of [
      ["/stage/%zz", 400],
      [`/stage/ws?pad=${"a".repeat(9000)}`, 414],
    ] as const) {
      const connection = await RawConnection.open(port());
      onTestFinished(() => void connection.socket.destroy());
      connection.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      await connection.responses(1, `the ${status}`);
      expect(parseResponses(connection.text)[0]?.status).toBe(status);
      await within(connection.closed, `the connection closing after its ${status}`, 2000);
    }
  });
});

// ─── 8. Back-pressure ─────────────────────────────────────────────────────────────────

/** `gc()` without `--expose-gc` on the command line. */
function exposeGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

/** A raw TCP SSE request whose reader then stops reading. */
async function stalledReader(path: string): Promise<RawConnection> {
  const connection = await RawConnection.open(port());
  connection.socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  await connection.until(/\r\n\r\n/, `the response head of ${path}`);
  expect(connection.text).toMatch(/^HTTP\/1\.1 200 /);
  expect(connection.text).toMatch(/content-type: text\/event-stream/i);
  connection.socket.pause();
  return connection;
}

describe("back-pressure", () => {
  let connection: RawConnection | undefined;
  afterEach(() => {
    connection?.socket.destroy();
    connection = undefined;
  });

  it("a stalled reader of a fast-changing property costs at most one pending value", async () => {
    const gc = exposeGc();
    connection = await stalledReader("/lamp/sample");
    const pad = "x".repeat(1024);
    gc();
    const before = process.memoryUsage().heapUsed;
    let n = 0;
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      for (let i = 0; i < 200; i++) {
        n += 1;
        lamp.sample = { n, pad };
      }
      await nextTurn();
    }
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    expect(n).toBeGreaterThan(20_000);
    expect(growth, `heap grew by ${(growth / MB).toFixed(1)} MB`).toBeLessThan(20 * MB);
    // Coalesced, not dropped.
    expect(server.longLived.countByKind().sse).toBe(1);

    const last = n;
    const conn = connection;
    conn.socket.resume();
    await conn.waitFor(
      (text) => text.includes(`"n":${last},`),
      "the newest value once the reader reads again",
    );
    const values = [...conn.text.matchAll(/event: sample\ndata: \{"n":(\d+),/g)].map((m) =>
      Number(m[1]),
    );
    expect(values.at(-1)).toBe(last);
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThan(values[i - 1]!);
    expect(values.length, "values were coalesced").toBeLessThan(last / 2);
  });

  it("a websocket page that stops reading gets the newest values, coalesced, in bounded memory", async () => {
    const gc = exposeGc();
    const ws = await RecordingWebSocket.open(wsUrl("/lamp/ws"));
    ws.send({ messageType: "addPropertyObservation", data: { sample: true, count: true } });
    ws.send({ messageType: "addActionObservation", data: { nope: true } });
    await ws.waitFor(() => ws.received.length === 1, "the subscriptions (then an error)");
    ws.socket.pause();
    lamp.count = 7;
    const pad = "x".repeat(1024);
    gc();
    const before = process.memoryUsage().heapUsed;
    let n = 0;
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      for (let i = 0; i < 200; i++) {
        n += 1;
        lamp.sample = { n, pad };
        lamp.count = 7; // the same value: upstream's pages hear every assignment
      }
      await nextTurn();
    }
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    expect(n).toBeGreaterThan(20_000);
    expect(growth, `heap grew by ${(growth / MB).toFixed(1)} MB`).toBeLessThan(20 * MB);
    expect(server.longLived.countByKind().websocket).toBe(1);

    const last = n;
    ws.socket.resume();
    const sampleOf = (m: Record<string, unknown>) =>
      (m.data as { sample?: Sample } | undefined)?.sample?.n;
    await ws.waitFor(() => ws.received.some((m) => sampleOf(m) === last), "the newest sample");
    const samples = ws.received.map(sampleOf).filter((v) => v !== undefined);
    for (let i = 1; i < samples.length; i++) expect(samples[i]!).toBeGreaterThan(samples[i - 1]!);
    expect(samples.length, "samples were coalesced").toBeLessThan(last / 2);
    const counts = ws.received.filter((m) => (m.data as { count?: number })?.count === 7);
    expect(counts.length).toBeGreaterThan(0);
    expect(counts.length, "reassignments were coalesced too").toBeLessThan(last / 2);
  });

  it("a reader of events that never reads is dropped after more than 256 queued events", async () => {
    connection = await stalledReader("/alarms/burst");
    const dropped = logs.waitFor(
      (line) => line.msg === "dropping SSE client that does not keep up",
      "the log line of the dropped client",
    );
    let isDropped = false;
    void dropped.then(() => {
      isDropped = true;
    });
    const pad = "y".repeat(16 * 1024);
    let n = 0;
    while (!isDropped && n < 5000) {
      for (let i = 0; i < 50; i++) {
        n += 1;
        alarms.burst.emit({ n, pad });
      }
      await nextTurn();
    }
    expect(isDropped, `dropped after ${n} events`).toBe(true);
    const line = await dropped;
    expect(line.queued).toBe(257);
    expect(line.client).toMatch(/^alarms\/burst ← /);
    const conn = connection;
    conn.socket.resume();
    await within(conn.closed, "the server to close the dropped reader's socket");
    expect(server.longLived.countByKind().sse ?? 0).toBe(0);
    expect(server.observation.subscriberCount).toBe(0);
    // What did arrive is in order, without gaps.
    const received = [...conn.text.matchAll(/event: burst\ndata: \{"n":(\d+),/g)].map((m) =>
      Number(m[1]),
    );
    expect(received.length).toBeGreaterThan(0);
    received.forEach((value, index) => {
      expect(value).toBe(index + 1);
    });
  });
});

// ─── 9. Shutdown ──────────────────────────────────────────────────────────────────────

describe("server.close() with observers open", () => {
  it("ends SSE responses cleanly, closes websockets with 1001, counts them, in < 250 ms", async () => {
    const source = new RecordingEventSource(`${base}/stage/position`, ["position"]);
    await source.opened();
    const properties = await RawSseReader.open(`${base}/lamp/properties`);
    const events = await RawSseReader.open(`${base}/alarms/events`);
    const ws = await RecordingWebSocket.open(wsUrl("/stage/ws"));
    ws.send({ messageType: "addPropertyObservation", data: { nope: true } });
    await ws.waitFor(() => ws.received.length >= 1, "the websocket to be served");
    lamp.count = 1;
    await properties.waitForCount(1, "a message on the open properties stream");
    expect(server.longLived.countByKind()).toEqual({ sse: 3, websocket: 1 });
    const streamEnded = source.waitFor(() => source.errors.length >= 1, "the EventSource's end");

    const started = performance.now();
    const report = await within(server.close(), "server.close()");
    const elapsed = performance.now() - started;

    expect(await within(properties.ended, "the properties stream to end")).toBe("end");
    expect(await within(events.ended, "the events stream to end")).toBe("end");
    expect(await within(ws.closed, "the websocket to close")).toMatchObject({ code: 1001 });
    await streamEnded;
    expect(report).toMatchObject({
      responsesEnded: 4,
      responsesDestroyed: [],
      forced: false,
    });
    expect(elapsed, JSON.stringify(report)).toBeLessThan(250);
    expect(server.longLived.size).toBe(0);
  });
});

// ─── 10. Thing Description ────────────────────────────────────────────────────────────

describe("Thing Description forms for observation and events", () => {
  type Form = { href: string; op: string | string[]; subprotocol?: string; [k: string]: unknown };
  const ops = (form: Form) => (Array.isArray(form.op) ? form.op : [form.op]);
  const formFor = (forms: Form[], op: string) => forms.find((f) => ops(f).includes(op));

  it("declares observable properties, events and the top-level SSE forms; following them works", async () => {
    const td = await getJson<ThingDescription>(`${base}/stage/`, "application/td+json");
    expect(td.profile).toContain(HTTP_SSE_PROFILE);

    const position = td.properties.position as { observable: boolean; forms: Form[] };
    expect(position.observable).toBe(true);
    const observe = formFor(position.forms, "observeproperty");
    expect(observe).toMatchObject({ subprotocol: "sse", "htv:methodName": "GET" });
    expect(ops(observe!)).toContain("unobserveproperty");
    // The first form's stream also sends each message unnamed (node-wot hears only
    // those); the plain stream follows it, as before.
    const observeForms = position.forms.filter((f) => ops(f).includes("observeproperty"));
    expect(observeForms.map((f) => f.href)).toEqual(["position?messages=both", "position"]);

    const limit = td.events.limitReached as { data: { properties: object }; forms: Form[] };
    expect(limit.data).toMatchObject({
      type: "object",
      properties: { requested: expect.any(Object), reached: expect.any(Object) },
    });
    const subscribe = formFor(limit.forms, "subscribeevent");
    expect(subscribe).toMatchObject({ subprotocol: "sse" });
    expect(limit.forms.map((f) => f.href)).toEqual(["limitReached?messages=both", "limitReached"]);

    const observeAll = formFor(td.forms as Form[], "observeallproperties");
    const subscribeAll = formFor(td.forms as Form[], "subscribeallevents");
    expect(observeAll).toMatchObject({ subprotocol: "sse" });
    expect(subscribeAll).toMatchObject({ subprotocol: "sse" });

    const lampTd = await getJson<ThingDescription>(`${base}/lamp/`, "application/td+json");
    const secret = lampTd.properties.secret as { observable: boolean; forms: Form[] };
    expect(secret.observable).toBe(false);
    expect(formFor(secret.forms, "observeproperty")).toBeUndefined();
    expect(secret.forms.some((f) => f.subprotocol === "sse")).toBe(false);
    expect(lampTd.profile).toContain(HTTP_SSE_PROFILE);

    // Follow the forms as a generic WoT consumer would.
    const follow = (form: Form) => RawSseReader.open(new URL(form.href, td.base).href);
    const positionStream = await follow(observe!);
    const eventStream = await follow(subscribe!);
    const allProperties = await follow(observeAll!);
    const allEvents = await follow(subscribeAll!);
    const plainPosition = await follow(observeForms[1]!);
    for (const reader of [positionStream, eventStream, allProperties, allEvents, plainPosition]) {
      expect(reader.status).toBe(200);
      expect(reader.headers["content-type"]).toMatch(/^text\/event-stream\b/);
    }
    stage.position = { x: 7, y: 0, z: 0 };
    stage.speed = 1234;
    const limitData = { requested: { x: 20000, y: 0, z: 0 }, reached: { x: 10000, y: 0, z: 0 } };
    stage.limitReached.emit(limitData);

    await positionStream.waitForCount(1, "position via the observeproperty form");
    await allProperties.waitForCount(2, "two properties via the observeallproperties form");
    await eventStream.waitForCount(1, "limitReached via the subscribeevent form");
    await allEvents.waitForCount(1, "limitReached via the subscribeallevents form");
    await positionStream.waitForCount(2, "position's unnamed twin");
    await eventStream.waitForCount(2, "limitReached's unnamed twin");
    // Named for SSE Profile consumers, then the same message unnamed, with the same id.
    const twinned = (reader: RawSseReader, name: string) => {
      const [named, unnamed] = reader.messages;
      expect(reader.messages).toHaveLength(2);
      expect(named!.event).toBe(name);
      expect(unnamed).toEqual({ ...named, event: "message" });
      expect(Number(named!.id)).toBeGreaterThan(0);
      return json(named!.data);
    };
    expect(twinned(positionStream, "position")).toEqual({ x: 7, y: 0, z: 0 });
    expect(allProperties.messages.map((m) => [m.event, json(m.data)])).toEqual([
      ["position", { x: 7, y: 0, z: 0 }],
      ["speed", 1234],
    ]);
    expect(twinned(eventStream, "limitReached")).toEqual(limitData);
    await plainPosition.waitForCount(1, "position via the plain form");
    expect(plainPosition.messages.map((m) => [m.event, json(m.data)])).toEqual([
      ["position", { x: 7, y: 0, z: 0 }],
    ]);
    expect(allEvents.messages.map((m) => [m.event, json(m.data)])).toEqual([
      ["limitReached", limitData],
    ]);
  });
});

// Keep `parseSse` honest on its own (the raw readers depend on it).
describe("parseSse", () => {
  it("parses fields, joins data lines, skips comments and keeps a partial tail", () => {
    const { messages, rest } = parseSse(
      ": heartbeat\n\nevent: a\ndata: 1\nid: 5\n\nevent: b\r\ndata: x\r\ndata: y\r\n\r\ndata: partial",
    );
    expect(messages).toEqual([
      { event: "a", data: "1", id: "5" },
      { event: "b", data: "x\ny", id: undefined },
    ]);
    expect(rest).toBe("data: partial");
  });
});
