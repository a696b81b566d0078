/**
 * Roles (viewer and operator tokens) across every route and every operation the Thing
 * Descriptions name, against a real server on 127.0.0.1 with the simulated microscope,
 * and real clients (fetch, EventSource, ws): a viewer reads, observes, watches streams,
 * takes snapshots, follows invocations and downloads blobs; every write, invocation and
 * cancellation of a viewer is 403 Problem Details naming the `operator` role and changes
 * nothing. The single `authToken` keeps working, as an operator. `GET /access/` tells a
 * page which role its token has.
 *
 * And redaction: `access_token` never comes back in anything the server echoes (Problem
 * Details `instance` of every kind of error, the log at debug level, invocation records).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Autofocus, SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import {
  type ActionStatus,
  ConfigError,
  property,
  Thing,
  ThingServer,
  Type,
} from "../src/index.js";
import { assertBuilt, killAll, listeningUrl, STAGE, startCli } from "./support/cli-process.js";
import { LogCapture } from "./support/log-capture.js";
import { expectProblem } from "./support/problem.js";
import { RawConnection, rawGet } from "./support/raw-http.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const OPERATOR = "operator-token-0123456789abcdef";
const VIEWER = "viewer-token-0123456789abcdef01";
const auth = (token: string) => ({ authorization: `Bearer ${token}` });

interface Form {
  href: string;
  op: string[];
  "htv:methodName"?: string;
  subprotocol?: string;
}
interface Affordance {
  forms: Form[];
  readOnly?: boolean;
  input?: unknown;
}
interface Description {
  base: string;
  properties: Record<string, Affordance>;
  actions: Record<string, Affordance>;
  events: Record<string, Affordance>;
  links?: { href: string; type: string }[];
  forms: Form[];
}

/** One operation a TD names: what it is, the method, the absolute URL. */
interface Operation {
  label: string;
  op: string;
  method: string;
  url: string;
  sse: boolean;
}

const SAFE_OPS = new Set([
  "readproperty",
  "readallproperties",
  "observeproperty",
  "observeallproperties",
  "unobserveproperty",
  "unobserveallproperties",
  "subscribeevent",
  "subscribeallevents",
  "unsubscribeevent",
  "unsubscribeallevents",
  "queryaction",
  "queryallactions",
]);

class Failing extends Thing {
  /** A getter that throws: a 500 whose log line carries the request's URL (and not observable: 406 for SSE). */
  @property({ schema: Type.Number(), readOnly: true })
  get broken(): number {
    throw new Error("the sensor is unplugged");
  }
}

function operationsOf(descriptions: Record<string, Description>, invocationId: string) {
  const operations: Operation[] = [];
  for (const [thing, td] of Object.entries(descriptions)) {
    const add = (label: string, form: Form) => {
      for (const op of form.op) {
        operations.push({
          label: `${thing} ${label} ${op}`,
          op,
          method: form["htv:methodName"] ?? "GET",
          url: new URL(form.href.replace("{id}", invocationId), td.base).href,
          sse: form.subprotocol === "sse",
        });
      }
    };
    for (const form of td.forms) add("(Thing)", form);
    for (const kind of ["properties", "actions", "events"] as const) {
      for (const [name, affordance] of Object.entries(td[kind])) {
        for (const form of affordance.forms) add(name, form);
      }
    }
  }
  return operations;
}

/** A body that the operation accepts (so a 403 is about the role, not the value). */
function bodyFor(operation: Operation, descriptions: Record<string, Description>): unknown {
  if (operation.op === "writeproperty") {
    const thing = operation.label.split(" ")[0]!;
    const name = operation.label.split(" ")[1]!;
    return (
      {
        stage: { speed: 1500 },
        camera: {
          exposureTime: 12_000,
          analogGain: 2,
          resolution: { width: 64, height: 48 },
          frameRate: 5,
          colourGains: { red: 1.5, blue: 1.5 },
        },
      } as Record<string, Record<string, unknown>>
    )[thing]?.[name];
  }
  if (operation.op === "writemultipleproperties") return {};
  if (operation.op === "invokeaction") {
    const thing = operation.label.split(" ")[0]!;
    const name = operation.label.split(" ")[1]!;
    return descriptions[thing]?.actions[name]?.input ? {} : undefined;
  }
  return undefined;
}

async function send(operation: Operation, token: string, body?: unknown): Promise<Response> {
  const controller = new AbortController();
  const response = await fetch(operation.url, {
    method: operation.method,
    signal: controller.signal,
    headers: {
      ...auth(token),
      accept: operation.sse ? "text/event-stream" : "application/json",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // An event stream stays open: its status and headers are all a test needs.
  if (operation.sse && response.ok) controller.abort();
  return response;
}

describe("viewer and operator tokens", () => {
  let server: ThingServer;
  let base: string;
  let stage: SimulatedStage;
  let camera: SimulatedCamera;
  let descriptions: Record<string, Description>;
  let finished: ActionStatus;
  let blobHref: string;

  beforeAll(async () => {
    stage = new SimulatedStage();
    camera = new SimulatedCamera({ width: 64, height: 48, fps: 10 });
    server = new ThingServer(
      [
        { name: "stage", thing: stage },
        { name: "camera", thing: camera },
        { name: "autofocus", thing: new Autofocus() },
      ],
      { port: 0, authToken: OPERATOR, authTokens: [{ token: VIEWER, role: "viewer" }] },
    );
    base = await server.start();
    descriptions = (await (await fetch(`${base}/thing_descriptions/`)).json()) as Record<
      string,
      Description
    >;
    const capture = await fetch(`${base}/camera/capture`, {
      method: "POST",
      headers: auth(OPERATOR),
    });
    expect(capture.status).toBe(201);
    const { id } = (await capture.json()) as ActionStatus;
    await within(server.invocations.get(id).settled, "the capture");
    finished = (await (
      await fetch(`${base}/action_invocations/${id}`, { headers: auth(VIEWER) })
    ).json()) as ActionStatus;
    blobHref = (finished.output as { href: string }).href;
  });

  afterAll(() => server && within(server.close(), "the server to close"));

  it("a viewer may use every safe operation of every TD (reads, observation, queries)", async () => {
    const safe = operationsOf(descriptions, finished.id).filter((o) => SAFE_OPS.has(o.op));
    expect(safe.map((o) => o.op)).toEqual(
      expect.arrayContaining(["readproperty", "observeproperty", "queryaction", "subscribeevent"]),
    );
    for (const operation of safe) {
      const response = await send(operation, VIEWER);
      expect(response.status, `${operation.label} ${operation.method} ${operation.url}`).toBe(200);
      if (!operation.sse) await response.arrayBuffer();
    }
  });

  it("every write, invocation and cancellation of a viewer is 403 naming the operator role, and changes nothing", async () => {
    const unsafe = operationsOf(descriptions, finished.id).filter((o) => !SAFE_OPS.has(o.op));
    expect(new Set(unsafe.map((o) => o.op))).toEqual(
      new Set(["writeproperty", "writemultipleproperties", "invokeaction", "cancelaction"]),
    );
    const before = JSON.stringify(server.registry.readAllThings());
    const invocationsBefore = server.invocations.size;
    for (const operation of unsafe) {
      const response = await send(operation, VIEWER, bodyFor(operation, descriptions));
      const problem = await expectProblem(response, 403);
      expect(problem.type).toBe("tag:labthings-ts,2026:forbidden");
      expect(problem.detail, operation.label).toContain("'operator' role");
      expect(problem.detail).toContain("'viewer' role");
      expect(response.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    }
    expect(JSON.stringify(server.registry.readAllThings())).toBe(before);
    expect(server.invocations.size).toBe(invocationsBefore);
  });

  it("the operator (the single authToken) may do all of it", async () => {
    const unsafe = operationsOf(descriptions, finished.id).filter(
      (o) => o.op === "writeproperty" || o.op === "invokeaction",
    );
    const write = unsafe.find((o) => o.url.endsWith("/stage/speed"))!;
    expect((await send(write, OPERATOR, 1500)).status).toBe(204);
    expect(stage.speed).toBe(1500);
    const move = unsafe.find((o) => o.url.endsWith("/stage/moveRelative"))!;
    const moved = await send(move, OPERATOR, { x: 5 });
    expect(moved.status).toBe(201);
    const { id } = (await moved.json()) as ActionStatus;
    await within(server.invocations.get(id).settled, "the move");
    expect(stage.position.x).toBe(5);
    const cancel = await fetch(`${base}/action_invocations/${id}`, {
      method: "DELETE",
      headers: auth(OPERATOR),
    });
    expect(cancel.status).toBe(409); // finished already: the role let it through
  });

  it("a viewer watches streams, takes snapshots, lists invocations, downloads blobs and opens websockets", async () => {
    for (const path of [
      "/things/",
      "/action_invocations/",
      "/stage/actions",
      "/camera/stream/snapshot",
      new URL(blobHref, base).pathname,
    ]) {
      const response = await fetch(`${base}${path}`, { headers: auth(VIEWER) });
      expect(response.status, path).toBe(200);
      await response.arrayBuffer();
    }
    const stream = new AbortController();
    const mjpeg = await fetch(`${base}/camera/stream?access_token=${VIEWER}`, {
      signal: stream.signal,
    });
    expect(mjpeg.headers.get("content-type")).toMatch(/^multipart\/x-mixed-replace/);
    stream.abort();

    const source = new EventSource(`${base}/stage/position?access_token=${VIEWER}`);
    try {
      await within(
        new Promise((resolve, reject) => {
          source.onopen = resolve;
          source.onerror = reject;
        }),
        "the viewer's EventSource",
      );
    } finally {
      source.close();
    }

    const socket = new WebSocket(`${base.replace("http", "ws")}/stage/ws?access_token=${VIEWER}`);
    try {
      await within(new Promise((resolve) => socket.once("open", resolve)), "the websocket");
      socket.send(
        JSON.stringify({ messageType: "addPropertyObservation", data: { position: true } }),
      );
      const message = within(
        new Promise<string>((resolve) => socket.once("message", (data) => resolve(String(data)))),
        "a position over the websocket",
      );
      // The observation is taken when the server has read the message: nudge until then.
      let x = 7;
      const nudge = setInterval(() => {
        stage.position = { x: x++, y: 0, z: 0 };
      }, 20);
      try {
        expect(JSON.parse(await message)).toMatchObject({ messageType: "propertyStatus" });
      } finally {
        clearInterval(nudge);
      }
    } finally {
      socket.close();
    }
  });

  it("GET /access/ names the caller's role; without a token it is 401", async () => {
    const viewer = await fetch(`${base}/access/`, { headers: auth(VIEWER) });
    expect(await viewer.json()).toMatchObject({ authentication: "bearer", role: "viewer" });
    const operator = await fetch(`${base}/access/?access_token=${OPERATOR}`);
    expect(await operator.json()).toMatchObject({ role: "operator" });
    await expectProblem(await fetch(`${base}/access/`), 401);
  });

  it("the same token for two roles, or an unknown role, is a ConfigError", () => {
    expect(
      () =>
        new ThingServer([], {
          authToken: OPERATOR,
          authTokens: [{ token: OPERATOR, role: "viewer" }],
        }),
    ).toThrow(ConfigError);
    expect(
      () =>
        new ThingServer([], {
          authTokens: [{ token: VIEWER, role: "admin" as "viewer" }],
        }),
    ).toThrow(/unknown role 'admin'/);
  });
});

describe("without authentication", () => {
  it("GET /access/ says so: everyone is an operator", async () => {
    const server = new ThingServer([{ name: "stage", thing: new SimulatedStage() }], { port: 0 });
    const base = await server.start();
    try {
      expect(await (await fetch(`${base}/access/`)).json()).toMatchObject({
        authentication: "none",
        role: "operator",
      });
    } finally {
      await server.close();
    }
  });
});

describe("access_token is never echoed", () => {
  const logs = new LogCapture("debug");
  let server: ThingServer;
  let base: string;

  beforeAll(async () => {
    server = new ThingServer(
      [
        { name: "stage", thing: new SimulatedStage() },
        { name: "failing", thing: new Failing() },
      ],
      {
        port: 0,
        authToken: OPERATOR,
        authTokens: [{ token: VIEWER, role: "viewer" }],
        logger: logs.logger,
      },
    );
    base = await server.start();
  });

  afterAll(() => server && within(server.close(), "the server to close"));

  /** Every kind of error, each with a token in its URL. */
  const cases: { what: string; path: string; status: number; init?: RequestInit }[] = [
    { what: "404 unknown path", path: `/nothing?access_token=${OPERATOR}`, status: 404 },
    {
      what: "404 unknown affordance",
      path: `/stage/nope?a=1&access_token=${OPERATOR}`,
      status: 404,
    },
    {
      what: "401 wrong token",
      path: "/stage/speed?access_token=wrong-token-0123456789",
      status: 401,
    },
    {
      what: "403 viewer's write",
      path: `/stage/speed?access_token=${VIEWER}`,
      status: 403,
      init: {
        method: "PUT",
        headers: { ...auth(VIEWER), "content-type": "application/json" },
        body: "5",
      },
    },
    {
      what: "405 method",
      path: `/stage/position?access_token=${OPERATOR}`,
      status: 405,
      init: {
        method: "PUT",
        headers: { ...auth(OPERATOR), "content-type": "application/json" },
        body: "5",
      },
    },
    {
      what: "400 invalid value",
      path: `/stage/speed?access_token=${OPERATOR}`,
      status: 400,
      init: {
        method: "PUT",
        headers: { ...auth(OPERATOR), "content-type": "application/json" },
        body: "-5",
      },
    },
    {
      what: "406 not observable",
      path: `/failing/broken?access_token=${OPERATOR}`,
      status: 406,
      init: { headers: { accept: "text/event-stream" } },
    },
    {
      what: "500 a getter that throws",
      path: `/failing/broken?access_token=${OPERATOR}`,
      status: 500,
    },
    {
      what: "404 percent-encoded parameter name",
      path: `/nothing?access%5Ftoken=${OPERATOR}`,
      status: 404,
    },
  ];

  it("Problem Details `instance` of every kind of error keeps the path and other parameters, not the token", async () => {
    for (const { what, path, status, init } of cases) {
      const response = await fetch(`${base}${path}`, init);
      const text = await response.text();
      expect(response.status, what).toBe(status);
      expect(text, what).not.toContain(OPERATOR);
      expect(text, what).not.toContain(VIEWER);
      expect(text, what).not.toContain("wrong-token");
      if (status >= 400)
        expect(JSON.parse(text).instance, what).toBe(
          path.split("?")[0] + (path.includes("a=1") ? "?a=1" : ""),
        );
    }
    // A URL the router cannot decode is answered before routing: redacted there too.
    const bad = await rawGet(base, `/stage/%zz?access_token=${OPERATOR}`);
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).not.toContain(OPERATOR);
  });

  it("invocation records (status, Location, log, error) carry no token", async () => {
    const response = await fetch(`${base}/stage/moveRelative?access_token=${OPERATOR}`, {
      method: "POST",
      headers: { ...auth(OPERATOR), "content-type": "application/json" },
      body: JSON.stringify({ x: 3 }),
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("location")).not.toContain(OPERATOR);
    const { id } = (await response.json()) as ActionStatus;
    await within(server.invocations.get(id).settled, "the move");
    const records = await (
      await fetch(`${base}/action_invocations/?access_token=${OPERATOR}`)
    ).text();
    expect(records).toContain(id);
    expect(records).not.toContain(OPERATOR);
  });

  it("the log at debug level names every request without its token", async () => {
    // Requests Node refuses before Fastify sees them (malformed, a head too large): their
    // debug line used to hold the raw request (`rawPacket`), Authorization header included.
    const { port } = new URL(base);
    for (const head of [
      `GET /stage/speed?access_token=${VIEWER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR}\r\nBad Header\r\n\r\n`,
      `GET /stage/speed?access_token=${VIEWER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR}\r\nX: ${"a".repeat(20_000)}\r\n\r\n`,
    ]) {
      const connection = await RawConnection.open(Number(port));
      connection.socket.write(head);
      await within(connection.closed, "the refused request's connection to close");
      expect(connection.text).toMatch(/^HTTP\/1\.1 4(00|31) /);
    }
    await logs.waitFor(
      (line) => line.msg === "client error" && JSON.stringify(line).includes("HEADER_OVERFLOW"),
      "the refused requests in the log",
    );
    await logs.waitFor((line) => line.msg === "request failed", "the 500 in the log");
    // Buffers are logged as `{ type: "Buffer", data: [71, 69, …] }`: read them as text too.
    const logged = JSON.stringify(logs.lines, (_key, value) =>
      value?.type === "Buffer" && Array.isArray(value.data)
        ? Buffer.from(value.data).toString("latin1")
        : value,
    );
    expect(logs.lines.filter((line) => line.msg === "request").length).toBeGreaterThan(5);
    expect(logged).toContain("/failing/broken");
    expect(logged).not.toContain(OPERATOR);
    expect(logged).not.toContain(VIEWER);
    expect(logged).not.toContain("wrong-token");
  });
});

describe("the CLI's auth.tokens", () => {
  afterAll(async () => {
    await killAll();
    await removeTempDirs();
  });

  it("reads each token file (relative to the config) with its role, beside tokenFile", async () => {
    assertBuilt();
    const dir = await tempDir("labthings-roles-cli-");
    await writeFile(join(dir, "operator.txt"), `${OPERATOR}\n`);
    await mkdir(join(dir, "tokens"));
    await writeFile(join(dir, "tokens", "viewer.txt"), VIEWER);
    const config = join(dir, "lab.json");
    await writeFile(
      config,
      JSON.stringify({
        things: { stage: STAGE },
        auth: {
          tokenFile: "operator.txt",
          tokens: [{ file: "tokens/viewer.txt", role: "viewer" }],
        },
      }),
    );
    const cli = startCli(["--config", config, "--port", "0"]);
    const url = await listeningUrl(cli);
    await cli.waitForLog(
      (line) =>
        /authentication on: .*viewer and operator|operator and viewer/.test(String(line.msg)),
      "the authentication line",
    );
    expect((await fetch(`${url}/stage/speed`, { headers: auth(VIEWER) })).status).toBe(200);
    const refused = await fetch(`${url}/stage/speed`, {
      method: "PUT",
      headers: { ...auth(VIEWER), "content-type": "application/json" },
      body: "100",
    });
    await expectProblem(refused, 403);
    const written = await fetch(`${url}/stage/speed`, {
      method: "PUT",
      headers: { ...auth(OPERATOR), "content-type": "application/json" },
      body: "100",
    });
    expect(written.status).toBe(204);
    cli.signal("SIGTERM");
    expect((await within(cli.closed, "the CLI to exit")).code).toBe(0);
  });

  it("a token file that cannot be read names its key; an empty auth is refused", async () => {
    assertBuilt();
    const dir = await tempDir("labthings-roles-cli-bad-");
    const config = join(dir, "lab.json");
    await writeFile(
      config,
      JSON.stringify({
        things: { stage: STAGE },
        auth: { tokens: [{ file: "missing.txt", role: "viewer" }] },
      }),
    );
    const cli = startCli(["--config", config, "--port", "0"]);
    expect((await within(cli.closed, "the CLI to exit")).code).toBe(2);
    expect(cli.stderr()).toContain("config auth.tokens.0.file: cannot read");

    await writeFile(config, JSON.stringify({ things: { stage: STAGE }, auth: {} }));
    const empty = startCli(["--config", config, "--port", "0"]);
    expect((await within(empty.closed, "the CLI to exit")).code).toBe(2);
    expect(empty.stderr()).toContain("config auth: give tokenFile or tokens");
  });
});
