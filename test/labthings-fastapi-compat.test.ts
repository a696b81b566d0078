/**
 * Clients written for labthings-fastapi work unchanged against the simulated microscope.
 *
 * - Its Python `ThingClient`, replayed request for request (test/support/upstream-thing-
 *   client.ts follows its source line by line): `from_url`, properties, `invoke_action`
 *   and `poll_invocation` through the `self` link, a blob output as a `Blob` whose content
 *   is the JPEG (with a bearer token too: the blob's GET carries it), and the exception it
 *   raises for bad input, a failing action, a cancelled one and a busy lock, message for
 *   message.
 * - Its websocket (`/{thing}/ws`), with a real `ws` client, in the sequences of its own
 *   tests/test_websocket.py: a propertyStatus per assignment (also of the same value), one
 *   actionStatus per status, error `response`s with its Web Thing Protocol types.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Autofocus, SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import { type ActionStatus, action, property, Thing, Type } from "../src/index.js";
import { invoke, pollStatus } from "./support/actions-http.js";
import { getJson, putJson } from "./support/json-http.js";
import { RecordingWebSocket } from "./support/observation-clients.js";
import { serveDuringSuite } from "./support/suite-server.js";
import {
  FailedToInvokeActionError,
  GlobalLockBusyError,
  HttpxClient,
  InvocationCancelledError,
  polledInvocationId,
  pollInvocation,
  RemoteBlob,
  raised,
  ServerActionError,
  UpstreamThingClient,
} from "./support/upstream-thing-client.js";

interface Position {
  x: number;
  y: number;
  z: number;
}

const TOKEN = "compat-suite-token-0123456789";
const microscope = () => [
  { name: "stage", thing: new SimulatedStage() },
  { name: "camera", thing: new SimulatedCamera({ width: 320, height: 240, fps: 15 }) },
  { name: "autofocus", thing: new Autofocus() },
];

/** What the client would have written to the server's path, in order: `METHOD /path`. */
const wire = (client: HttpxClient, from = 0) =>
  client.requests.slice(from).map((r) => `${r.method} ${new URL(r.url).pathname}`);

const isJpeg = (bytes: Buffer) =>
  bytes.length > 4 &&
  bytes[0] === 0xff &&
  bytes[1] === 0xd8 &&
  bytes.at(-2) === 0xff &&
  bytes.at(-1) === 0xd9;

describe("labthings-fastapi's ThingClient against the microscope", () => {
  const suite = serveDuringSuite(microscope);
  const clients: HttpxClient[] = [];
  afterAll(() => {
    for (const client of clients) client.close();
  });

  /** `ThingClient.from_url(f"{base}/{thing}/", client=httpx2.Client(base_url=server))`. */
  async function connect(
    thing: string,
  ): Promise<{ thing: UpstreamThingClient; http: HttpxClient }> {
    const http = new HttpxClient({ baseUrl: suite.base });
    clients.push(http);
    return { thing: await UpstreamThingClient.fromUrl(`${suite.base}/${thing}/`, http), http };
  }
  const position = () => getJson<Position>(`${suite.base}/stage/position`);

  it("from_url makes one attribute per property and action; reads and writes go to {thing}/{name}", async () => {
    const { thing: stage, http } = await connect("stage");
    expect(Object.keys(stage.properties)).toEqual(["position", "speed", "travelRange"]);
    expect(Object.keys(stage.actions)).toEqual(["moveRelative", "moveAbsolute"]);
    expect(await stage.get("position")).toEqual(await position());
    await stage.set("speed", 5000);
    expect(await getJson(`${suite.base}/stage/speed`)).toBe(5000);
    expect(await stage.get("speed")).toBe(5000);
    expect(wire(http)).toEqual([
      "GET /stage/",
      "GET /stage/position",
      "PUT /stage/speed",
      "GET /stage/speed",
    ]);
    expect(http.requests[2]!.body).toBe("5000");
    // Refusals: ClientPropertyError with our Problem Details `detail` (client:186-196).
    await expect(stage.set("speed", "fast")).rejects.toThrow(
      /^Failed to set property speed: invalid value for Thing 'stage': \/speed must be number/,
    );
    await expect(stage.set("speed", 1e9)).rejects.toThrow(/must be <= 20000/);
    expect(await getJson(`${suite.base}/stage/speed`)).toBe(5000);
    await stage.set("speed", 2000);
  });

  it('moveRelative(x=100): a POST of {"x":100}, then GETs of its `self` link until completed; returns the position', async () => {
    const { thing: stage, http } = await connect("stage");
    const from = await position();
    const start = http.requests.length;
    expect(await stage.call("moveRelative", { x: 100 })).toEqual({ ...from, x: from.x + 100 });
    const [post, ...polls] = http.requests.slice(start);
    expect(post).toMatchObject({ method: "POST", body: '{"x":100}' });
    expect(post!.headers["content-type"]).toBe("application/json");
    expect(polls.length).toBeGreaterThanOrEqual(1);
    const id = new URL(polls[0]!.url).pathname.split("/").at(-1)!;
    for (const poll of polls) {
      expect(`${poll.method} ${new URL(poll.url).pathname}`).toBe(`GET /action_invocations/${id}`);
    }
    expect(await position()).toEqual({ ...from, x: from.x + 100 });

    // No arguments: the client sends `{}` (every input member is optional).
    const before = http.requests.length;
    expect(await stage.call("moveRelative")).toEqual({ ...from, x: from.x + 100 });
    expect(http.requests[before]).toMatchObject({ method: "POST", body: "{}" });
  });

  it("capture() returns a Blob of image/jpeg whose content is the JPEG; its `output` link serves it too", async () => {
    const { thing: camera, http } = await connect("camera");
    const blob = await camera.call("capture");
    expect(blob).toBeInstanceOf(RemoteBlob);
    const { mediaType, href } = blob as RemoteBlob;
    expect(mediaType).toBe("image/jpeg");
    const bytes = await (blob as RemoteBlob).content();
    expect(isJpeg(bytes), `${bytes.length} bytes`).toBe(true);
    expect(wire(http).at(-1)).toBe(`GET ${href}`);
    expect(http.requests.at(-1)!.body).toBeUndefined();

    // The same, step by step, then `follow_link(invocation, "output")` (client:256).
    const posted = await http.post("/camera/capture", {});
    expect(posted.status).toBe(201);
    const done = await pollInvocation(http, posted.json() as Record<string, unknown>);
    expect(done.status).toBe("completed");
    const output = await camera.followLink(done, "output");
    expect(output.headers["content-type"]).toBe("image/jpeg");
    expect(isJpeg(output.content)).toBe(true);
    const reference = done.output as { size: number; media_type: string };
    expect(output.content.length).toBe(reference.size);
  });

  it("autofocus.run(range=200, steps=3) returns its result; the stage ends where it says", async () => {
    const { thing: autofocus } = await connect("autofocus");
    const result = (await autofocus.call("run", { range: 200, steps: 3 })) as {
      z: number;
      scores: unknown[];
    };
    expect(result.scores).toHaveLength(3 + 11);
    expect((await position()).z).toBe(result.z);
  });

  it("bad input raises FailedToInvokeActionError with the server's detail; nothing moves", async () => {
    const { thing: stage } = await connect("stage");
    const { thing: autofocus } = await connect("autofocus");
    const before = await position();
    const invocationsBefore = suite.server.invocations.size;
    await expect(stage.call("moveRelative", { x: "far" })).rejects.toThrow(
      new FailedToInvokeActionError(
        "Error when invoking action moveRelative: invalid input for action 'stage/moveRelative': /x must be integer (type)",
      ),
    );
    await expect(autofocus.call("run", { steps: 2 })).rejects.toThrow(
      /^Error when invoking action run: invalid input .*: \/steps must be >= 3 \(minimum\)/,
    );
    expect(suite.server.invocations.size).toBe(invocationsBefore);
    expect(await position()).toEqual(before);
  });

  it("a failing action raises ServerActionError: [title]: detail, then the server's traceback", async () => {
    const { thing: stage } = await connect("stage");
    const { thing: autofocus } = await connect("autofocus");
    await stage.set("speed", 20_000);
    await stage.call("moveAbsolute", { z: 9500 });
    const error = await raised(autofocus.call("run"));
    expect(error).toBeInstanceOf(ServerActionError);
    const message = (error as Error).message;
    expect(message).toMatch(
      /^Action run \(ID: [0-9a-f-]{36}\) failed with error:\n\[RangeError\]: a sweep of 3000 steps around z=9500 leaves the stage's z travel \(±10000 steps\)/,
    );
    // The last log record's traceback (exception_type RangeError), where the error was thrown.
    expect(message).toMatch(
      /\n\nSERVER TRACEBACK START:\n\nRangeError: a sweep[^\n]*\n\s+at [^\n]*autofocus\.ts:\d+:\d+/,
    );
    expect(message.endsWith("\n\nSERVER TRACEBACK END\n\n")).toBe(true);
    const id = /\(ID: ([0-9a-f-]+)\)/.exec(message)![1]!;
    const failed = await getJson<ActionStatus>(`${suite.base}/action_invocations/${id}`);
    expect(failed.log.at(-1)).toMatchObject({
      levelname: "ERROR",
      levelno: 40,
      exception_type: "RangeError",
      filename: "autofocus.ts",
      lineno: expect.any(Number),
      created: failed.log.at(-1)!.time,
    });
    await stage.call("moveAbsolute", { z: 0 });
    await stage.set("speed", 2000);
  });

  it("a DELETE while the client polls makes it raise InvocationCancelledError; the stage stops short", async () => {
    const { thing: stage, http } = await connect("stage");
    const from = await position();
    const start = http.requests.length;
    const call = raised(stage.call("moveRelative", { x: 4000 }));
    const id = await polledInvocationId(http, start);
    await pollStatus(suite.base, id, (s) => s.status === "running", "the move to run");
    const cancel = await fetch(`${suite.base}/action_invocations/${id}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    const error = await call;
    expect(error).toBeInstanceOf(InvocationCancelledError);
    expect((error as Error).message).toBe("cancelled on request");
    const stopped = await position();
    expect(stopped.x).toBeGreaterThan(from.x);
    expect(stopped.x).toBeLessThan(from.x + 4000);
  });

  it("autofocus while a long move holds the stage raises GlobalLockBusyError after 2 s", async () => {
    const { thing: autofocus } = await connect("autofocus");
    const move = await invoke(suite.base, "stage/moveRelative", { x: -8000 });
    await pollStatus(suite.base, move.id, (s) => s.status === "running", "the long move to run");
    const started = performance.now();
    const error = await raised(autofocus.call("run"));
    expect(error).toBeInstanceOf(GlobalLockBusyError);
    expect((error as Error).message).toMatch(
      /^lock 'stage' is held by stage\/moveRelative after waiting 2000 ms$/,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    await fetch(`${suite.base}/action_invocations/${move.id}`, { method: "DELETE" });
  });
});

describe("labthings-fastapi's ThingClient with a bearer token", () => {
  const secured = serveDuringSuite(microscope, { authToken: TOKEN });

  it("sends the token on every request, the blob's GET included; the blob is refused without it", async () => {
    // How such a script authenticates: `httpx2.Client(base_url=…, headers={…})`.
    const http = new HttpxClient({
      baseUrl: secured.base,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    try {
      const camera = await UpstreamThingClient.fromUrl(`${secured.base}/camera/`, http);
      const blob = (await camera.call("capture")) as RemoteBlob;
      expect(blob.mediaType).toBe("image/jpeg");
      expect(isJpeg(await blob.content())).toBe(true);
      expect(wire(http).length).toBeGreaterThanOrEqual(4); // TD, POST, ≥1 poll, blob
      for (const sent of http.requests) {
        expect(sent.headers.authorization, sent.url).toBe(`Bearer ${TOKEN}`);
      }
      const anonymous = await fetch(new URL(blob.href, secured.base));
      expect(anonymous.status).toBe(401);
    } finally {
      http.close();
    }
  });
});

/** A computed property that is not declared observable: its websocket observation is refused. */
class Clock extends Thing {
  @property({ schema: Type.Number(), readOnly: true })
  get uptime() {
    return process.uptime();
  }

  @action()
  tick(): void {}
}

describe("labthings-fastapi's websocket sequences (its tests/test_websocket.py) on the microscope", () => {
  // Every microscope property is observable, so a small Thing beside it has one that is not.
  const suite = serveDuringSuite(() => [...microscope(), { name: "clock", thing: new Clock() }]);
  const ws = (thing: string) =>
    RecordingWebSocket.open(`${suite.base.replace("http", "ws")}/${thing}/ws`);
  type Message = Record<string, unknown> & { messageType?: string; data?: Record<string, unknown> };
  const of = (socket: RecordingWebSocket, type: string) =>
    (socket.received as Message[]).filter((m) => m.messageType === type);
  /** POST an action over plain HTTP and wait until its invocation has `status`. */
  const runUntil = async (path: string, input: unknown, status: string) => {
    const created = await invoke(suite.base, path, input);
    await pollStatus(suite.base, created.id, (s) => s.status === status, `${path} ${status}`);
    return created;
  };

  it("a propertyStatus for each PUT, in lockstep, a repeated value included; and for an action's changes", async () => {
    const socket = await ws("stage");
    socket.send({ messageType: "addPropertyObservation", data: { speed: true } });
    // Let the subscription land before the first PUT (the socket's messages are ordered).
    socket.send({ messageType: "addPropertyObservation", data: { nope: true } });
    await socket.waitFor(() => of(socket, "response").length === 1, "the error for 'nope'");
    for (const [index, value] of [3000, 3000, 2500].entries()) {
      expect((await putJson(`${suite.base}/stage/speed`, value)).status).toBe(204);
      await socket.waitFor(
        () => of(socket, "propertyStatus").length === index + 1,
        `propertyStatus #${index + 1}`,
      );
      expect(of(socket, "propertyStatus")[index]).toEqual({
        messageType: "propertyStatus",
        data: { speed: value },
      });
    }
    // Assignments in the Thing's own code count too (an action moving the stage).
    socket.send({ messageType: "addPropertyObservation", data: { position: true } });
    await putJson(`${suite.base}/stage/speed`, 2000);
    await socket.waitFor(() => of(socket, "propertyStatus").length === 4, "the speed reset");
    await runUntil("stage/moveRelative", { x: 60 }, "completed");
    await socket.waitFor(
      () => of(socket, "propertyStatus").some((m) => "position" in m.data!),
      "a position update",
    );
    expect(of(socket, "propertyStatus").at(-1)!.data!.position).toEqual(
      await getJson(`${suite.base}/stage/position`),
    );
  });

  it("unknown or unobservable names get upstream's error responses; the socket stays open", async () => {
    const socket = await ws("clock");
    const refusals: [string, string, string, string][] = [
      ["addPropertyObservation", "uptime", "403", "Not Observable"], // computed
      ["addPropertyObservation", "missing", "404", "Not Found"],
      ["addPropertyObservation", "tick", "404", "Not Found"], // an action
      ["addActionObservation", "uptime", "404", "Not Found"], // a property
      ["addActionObservation", "missing", "404", "Not Found"],
    ];
    for (const [messageType, name] of refusals)
      socket.send({ messageType, data: { [name]: true } });
    await socket.waitFor(() => of(socket, "response").length === refusals.length, "five errors");
    const errors = "https://w3c.github.io/web-thing-protocol/errors";
    expect(of(socket, "response")).toEqual(
      refusals.map(([messageType, name, status, title]) => ({
        messageType: "response",
        operation: messageType === "addPropertyObservation" ? "observeproperty" : "observeaction",
        name,
        error: {
          status,
          type: status === "403" ? `${errors}#not-observable` : `${errors}#not-found`,
          title,
          detail:
            status === "403"
              ? `Property '${name}' is not observable.`
              : `No ${messageType === "addPropertyObservation" ? "property" : "action"} found with the name '${name}'.`,
        },
      })),
    );
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
  });

  it("a message that is JSON but no object (null, [], 5, a string), or whose messageType is no string, gets a response; the server and the socket carry on", async () => {
    const socket = await ws("stage");
    // `null` used to throw in the message listener: an uncaught exception, so one message
    // from any websocket client shut the whole server down.
    const odd = [
      "null",
      "[]",
      "5",
      '"hello"',
      '{"messageType":{"toString":1}}',
      '{"messageType":7}',
    ];
    for (const text of odd) socket.send(text);
    await socket.waitFor(() => of(socket, "response").length === odd.length, "a response each");
    expect(
      of(socket, "response").map((m) => [m.operation, (m.error as { status: string }).status]),
    ).toEqual(odd.map(() => ["unknown", "400"]));
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    // Still observing, still serving.
    socket.send({ messageType: "addPropertyObservation", data: { speed: true } });
    socket.send({ messageType: "addPropertyObservation", data: { nope: true } });
    await socket.waitFor(() => of(socket, "response").length === odd.length + 1, "subscribed");
    expect((await putJson(`${suite.base}/stage/speed`, 2000)).status).toBe(204);
    await socket.waitFor(() => of(socket, "propertyStatus").length === 1, "the speed");
  });

  it("an observation whose data is no object (missing, a list, a name) is answered with how to write it", async () => {
    const socket = await ws("stage");
    const odd = [
      { messageType: "addPropertyObservation" },
      { messageType: "addPropertyObservation", data: ["position"] },
      { messageType: "addActionObservation", data: "moveRelative" },
    ];
    for (const message of odd) socket.send(message);
    await socket.waitFor(() => of(socket, "response").length === odd.length, "a response each");
    const responses = of(socket, "response");
    expect(responses.map((m) => [m.operation, (m.error as { status: string }).status])).toEqual([
      ["observeproperty", "400"],
      ["observeproperty", "400"],
      ["observeaction", "400"],
    ]);
    expect((responses[0]!.error as { detail: string }).detail).toContain(
      `"data": {"position": true}`,
    );
  });

  it("one actionStatus per status: pending, running, then completed, error or cancelled", async () => {
    const stageSocket = await ws("stage");
    const focusSocket = await ws("autofocus");
    stageSocket.send({ messageType: "addActionObservation", data: { moveRelative: true } });
    focusSocket.send({ messageType: "addActionObservation", data: { run: true } });
    stageSocket.send({ messageType: "addActionObservation", data: { ready: true } });
    await stageSocket.waitFor(() => of(stageSocket, "response").length === 1, "subscribed");
    const statuses = (socket: RecordingWebSocket) =>
      of(socket, "actionStatus").map((m) => [m.data!["action name"], m.data!.status]);

    // Completed (with progress updates in between, which are not status changes).
    const done = await runUntil("stage/moveRelative", { x: 200 }, "completed");
    await stageSocket.waitFor(() => of(stageSocket, "actionStatus").length === 3, "3 statuses");
    expect(statuses(stageSocket)).toEqual([
      ["moveRelative", "pending"],
      ["moveRelative", "running"],
      ["moveRelative", "completed"],
    ]);
    expect(of(stageSocket, "actionStatus")[2]!.data).toMatchObject({ id: done.id, output: {} });

    // Cancelled.
    const cancelled = await runUntil("stage/moveRelative", { x: 4000 }, "running");
    await fetch(`${suite.base}/action_invocations/${cancelled.id}`, { method: "DELETE" });
    await stageSocket.waitFor(() => of(stageSocket, "actionStatus").length === 6, "6 statuses");
    expect(statuses(stageSocket).slice(3)).toEqual([
      ["moveRelative", "pending"],
      ["moveRelative", "running"],
      ["moveRelative", "cancelled"],
    ]);

    // Error (upstream's word for our `failed`): a sweep past the z travel.
    await putJson(`${suite.base}/stage/speed`, 20_000);
    await runUntil("stage/moveAbsolute", { z: 9800 }, "completed");
    await runUntil("autofocus/run", {}, "failed");
    await focusSocket.waitFor(() => of(focusSocket, "actionStatus").length === 3, "3 statuses");
    expect(statuses(focusSocket)).toEqual([
      ["run", "pending"],
      ["run", "running"],
      ["run", "error"],
    ]);
    await runUntil("stage/moveAbsolute", { z: 0 }, "completed");
    await putJson(`${suite.base}/stage/speed`, 2000);
  });
});
