/**
 * Properties over HTTP (WoT HTTP Basic Profile) against a real server on 127.0.0.1:
 * reads and writes, every way a write can be wrong (each answered with Problem Details
 * and leaving the Thing unchanged), 503 while shutting down, and the server options
 * that shape the HTTP surface (apiPrefix, cors, OpenAPI/docs).
 */
import { once } from "node:events";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { property, Thing, ThingServer, type ThingServerOptions, Type } from "../src/index.js";
import { getJson, putJson } from "./support/json-http.js";
import { microscopeEntries } from "./support/microscope.js";
import { expectProblem, expectRawProblem, type Problem } from "./support/problem.js";
import { parseResponses, RawConnection } from "./support/raw-http.js";
import { deferred, within } from "./support/within.js";

/** Upper bound for any single wait on the network or on the server. */
const WAIT_MS = 10_000;

function microscope(options: ThingServerOptions = {}): ThingServer {
  return new ThingServer(microscopeEntries(), { port: 0, ...options });
}

const servers: ThingServer[] = [];
/** The microscope with default options. */
let base: string;
/** The microscope with `limits.bodyBytes: 1024`. */
let smallBase: string;

beforeAll(async () => {
  const main = microscope();
  const small = microscope({ limits: { bodyBytes: 1024 } });
  servers.push(main, small);
  [base, smallBase] = await Promise.all([main.start(), small.start()]);
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

describe("camera snapshots with nobody watching", () => {
  it("both streams' snapshots get a frame (the idle camera refreshes the preview too)", async () => {
    for (const stream of ["stream", "preview"]) {
      const deadline = Date.now() + WAIT_MS;
      let response = await fetch(`${base}/camera/${stream}/snapshot`);
      // 503 with Retry-After until the first frame: follow it, as a client should.
      while (response.status === 503 && Date.now() < deadline) {
        await response.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 200));
        response = await fetch(`${base}/camera/${stream}/snapshot`);
      }
      expect(response.status, stream).toBe(200);
      const jpeg = Buffer.from(await response.arrayBuffer());
      expect(jpeg.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    }
  });
});

describe("reading and writing properties", () => {
  it("GET a property answers 200 with the bare JSON value", async () => {
    const response = await fetch(`${base}/camera/analogGain`, {
      headers: { accept: "application/json" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(await response.json()).toBe(1);

    const position = await fetch(`${base}/stage/position`);
    expect(position.status).toBe(200);
    expect(position.headers.get("content-type")).toMatch(/^application\/json\b/);
    expect(await position.json()).toEqual({ x: 0, y: 0, z: 0 });
  });

  it("PUT a valid value answers 204 with no body, and a following GET returns it", async () => {
    const response = await putJson(`${base}/camera/exposureTime`, 25_000);
    expect(response.status).toBe(204);
    expect(await response.text()).toBe("");
    expect(await getJson(`${base}/camera/exposureTime`)).toBe(25_000);

    const resolution = { width: 1024, height: 768 };
    expect((await putJson(`${base}/camera/resolution`, resolution)).status).toBe(204);
    expect(await getJson(`${base}/camera/resolution`)).toEqual(resolution);
  });

  it("GET /camera/properties returns every readable property in one object", async () => {
    const all = (await getJson(`${base}/camera/properties`)) as Record<string, unknown>;
    expect(Object.keys(all).sort()).toEqual(
      [
        "analogGain",
        "colourGains",
        "exposureTime",
        "fieldOfView",
        "frameRate",
        "resolution",
        "sensorTemperature",
      ].sort(),
    );
    for (const [name, value] of Object.entries(all)) {
      expect(await getJson(`${base}/camera/${name}`), name).toEqual(value);
    }
  });

  it("PUT /camera/properties with two valid values answers 204 and changes both", async () => {
    const response = await putJson(`${base}/camera/properties`, {
      analogGain: 4,
      colourGains: { red: 2, blue: 1.5 },
    });
    expect(response.status).toBe(204);
    expect(await getJson(`${base}/camera/analogGain`)).toBe(4);
    expect(await getJson(`${base}/camera/colourGains`)).toEqual({ red: 2, blue: 1.5 });
  });
});

interface BadRequest {
  name: string;
  method: "PUT" | "GET" | "DELETE";
  path: string;
  /** Sent as is; an untyped `Blob` makes fetch send no Content-Type at all. */
  body?: string | Blob;
  /** Content-Type header; `application/json` unless given (ignored for Blob bodies). */
  contentType?: string;
  /** Send to the server whose body limit is 1024 bytes. */
  small?: boolean;
  status: number;
  /** The properties (`/thing/prop`) the request tried to change: read before and after. */
  watch: string[];
  allow?: string;
  /** Further checks of the Problem Details. */
  check?: (problem: Problem) => void;
}

const badRequests: BadRequest[] = [
  {
    name: "invalid JSON body",
    method: "PUT",
    path: "/camera/resolution",
    body: '{"width": 800,',
    status: 400,
    watch: ["/camera/resolution"],
    check: (problem) => {
      // Where it broke, not only that it did.
      expect(problem.detail).toMatch(/^The request body is not valid JSON: .*position 14/);
      expect(problem.type).toBe("tag:labthings-ts,2026:invalid-json");
    },
  },
  {
    name: "a __proto__ member (prototype poisoning) is refused, naming it",
    method: "PUT",
    path: "/camera/resolution",
    body: '{"width": 800, "height": 600, "__proto__": {"admin": true}}',
    status: 400,
    watch: ["/camera/resolution"],
    check: (problem) => {
      expect(problem.type).toBe("tag:labthings-ts,2026:invalid-input");
      expect(problem.detail).toContain("'__proto__'");
      expect(problem.detail).not.toContain("not valid JSON");
    },
  },
  {
    name: "wrong type: a string for an integer",
    method: "PUT",
    path: "/camera/exposureTime",
    body: '"20000"',
    status: 400,
    watch: ["/camera/exposureTime"],
    check: (problem) => {
      expect(problem.errors?.[0]).toMatchObject({ field: "/exposureTime", rule: "type" });
      expect(problem.detail).toContain("/exposureTime");
    },
  },
  {
    name: "wrong type: a fraction for an integer",
    method: "PUT",
    path: "/camera/exposureTime",
    body: "12345.5",
    status: 400,
    watch: ["/camera/exposureTime"],
    check: (problem) =>
      expect(problem.errors?.[0]).toMatchObject({ field: "/exposureTime", rule: "type" }),
  },
  {
    name: "a number too large to be finite (JSON reads 1e400 as Infinity)",
    method: "PUT",
    path: "/camera/colourGains",
    body: '{"red": 1e400, "blue": 1}',
    status: 400,
    watch: ["/camera/colourGains"],
    check: (problem) =>
      expect(problem.errors).toEqual([
        {
          field: "/colourGains/red",
          rule: "finite",
          message: "must be a finite number (not too large)",
        },
      ]),
  },
  {
    name: "out of range: below the minimum",
    method: "PUT",
    path: "/camera/exposureTime",
    body: "5",
    status: 400,
    watch: ["/camera/exposureTime"],
    check: (problem) => {
      expect(problem.errors?.[0]).toMatchObject({ field: "/exposureTime", rule: "minimum" });
      expect(problem.detail).toContain("/exposureTime");
    },
  },
  {
    name: "out of range: above the maximum",
    method: "PUT",
    path: "/camera/analogGain",
    body: "99",
    status: 400,
    watch: ["/camera/analogGain"],
    check: (problem) =>
      expect(problem.errors?.[0]).toMatchObject({ field: "/analogGain", rule: "maximum" }),
  },
  {
    name: "nested object with a missing key and an extra key",
    method: "PUT",
    path: "/camera/resolution",
    body: JSON.stringify({ width: 800, depth: 3 }),
    status: 400,
    watch: ["/camera/resolution"],
    check: (problem) => {
      // In the order of the value: the extra key where it stands, the missing one after
      // everything present, named at the object it is missing from.
      expect(problem.errors?.map((e) => [e.field, e.rule, e.message])).toEqual([
        ["/resolution/depth", "additionalProperties", "is not allowed here (unknown member)"],
        ["/resolution", "required", "must have required property 'height'"],
      ]);
      expect(problem.detail).toContain("/resolution must have required property 'height'");
      expect(problem.detail).toContain("/resolution/depth");
    },
  },
  {
    name: "unknown Thing",
    method: "GET",
    path: "/microscope/exposureTime",
    status: 404,
    watch: [],
    check: (problem) => expect(problem.detail).toContain("microscope"),
  },
  {
    name: "unknown Thing (PUT)",
    method: "PUT",
    path: "/microscope/exposureTime",
    body: "20000",
    status: 404,
    watch: ["/camera/exposureTime"],
    check: (problem) => expect(problem.detail).toContain("microscope"),
  },
  {
    name: "unknown property",
    method: "GET",
    path: "/camera/shutterSpeed",
    status: 404,
    watch: [],
    check: (problem) => expect(problem.detail).toContain("shutterSpeed"),
  },
  {
    name: "unknown property (PUT)",
    method: "PUT",
    path: "/camera/shutterSpeed",
    body: "20000",
    status: 404,
    watch: [],
    check: (problem) => expect(problem.detail).toContain("shutterSpeed"),
  },
  {
    name: "PUT to the read-only /stage/position",
    method: "PUT",
    path: "/stage/position",
    body: JSON.stringify({ x: 10, y: 20, z: 30 }),
    status: 405,
    allow: "GET",
    watch: ["/stage/position"],
  },
  {
    name: "DELETE on a property",
    method: "DELETE",
    path: "/camera/exposureTime",
    status: 405,
    allow: "GET, PUT",
    watch: ["/camera/exposureTime"],
  },
  {
    name: "body larger than limits.bodyBytes (4 KB against 1 KB)",
    method: "PUT",
    path: "/camera/exposureTime",
    // Valid JSON (whitespace before a valid value): only its size is wrong.
    body: `${" ".repeat(4096)}20000`,
    small: true,
    status: 413,
    watch: ["/camera/exposureTime"],
  },
  {
    name: "PUT /camera/properties with one valid and one invalid value (all-or-nothing)",
    method: "PUT",
    path: "/camera/properties",
    body: JSON.stringify({ exposureTime: 30_000, analogGain: 99 }),
    status: 400,
    watch: ["/camera/exposureTime", "/camera/analogGain"],
    check: (problem) => {
      expect(problem.errors).toHaveLength(1);
      expect(problem.errors?.[0]).toMatchObject({ field: "/analogGain", rule: "maximum" });
    },
  },
  {
    name: "PUT /camera/properties with a read-only key",
    method: "PUT",
    path: "/camera/properties",
    body: JSON.stringify({ exposureTime: 30_000, sensorTemperature: 20 }),
    status: 400,
    watch: ["/camera/exposureTime", "/camera/sensorTemperature"],
    check: (problem) =>
      expect(problem.errors).toContainEqual(
        expect.objectContaining({ field: "/sensorTemperature" }),
      ),
  },
  {
    name: "PUT /camera/properties with something other than an object",
    method: "PUT",
    path: "/camera/properties",
    body: "[30000]",
    status: 400,
    watch: ["/camera/exposureTime"],
  },
  {
    name: "Content-Type text/plain",
    method: "PUT",
    path: "/camera/exposureTime",
    // Would be a valid value if it were read as JSON: only the media type is wrong.
    body: "20000",
    contentType: "text/plain",
    status: 415,
    watch: ["/camera/exposureTime"],
  },
  {
    name: "no Content-Type",
    method: "PUT",
    path: "/camera/exposureTime",
    body: new Blob(["20000"]), // a Blob without a type: fetch sends no Content-Type
    status: 415,
    watch: ["/camera/exposureTime"],
  },
];

describe("bad input is answered with Problem Details and changes nothing", () => {
  /** Every property value of both Things, read over HTTP. */
  async function snapshot(server: string): Promise<Record<string, unknown>> {
    return {
      stage: await getJson(`${server}/stage/properties`),
      camera: await getJson(`${server}/camera/properties`),
    };
  }

  async function readAll(server: string, paths: string[]): Promise<unknown[]> {
    return Promise.all(paths.map((path) => getJson(`${server}${path}`)));
  }

  it.each(badRequests)("$name → $status", async (row) => {
    const server = row.small ? smallBase : base;
    const watchedBefore = await readAll(server, row.watch);
    const before = await snapshot(server);

    const headers: Record<string, string> = { accept: "application/json" };
    if (row.body !== undefined && typeof row.body === "string") {
      headers["content-type"] = row.contentType ?? "application/json";
    }
    const response = await fetch(`${server}${row.path}`, {
      method: row.method,
      headers,
      body: row.body,
    });
    const problem = await expectProblem(response, row.status);
    if (row.allow !== undefined) expect(response.headers.get("allow")).toBe(row.allow);
    row.check?.(problem);

    expect(await readAll(server, row.watch)).toEqual(watchedBefore);
    expect(await snapshot(server)).toEqual(before);
  });
});

/** A Thing whose stop() waits until the test lets it finish. */
class Gate extends Thing {
  @property({ schema: Type.Integer() })
  accessor count = 0;

  readonly #stopEntered = deferred();
  readonly #release = deferred();
  readonly stopEntered = this.#stopEntered.promise;

  release(): void {
    this.#release.resolve();
  }

  override async stop(): Promise<void> {
    this.#stopEntered.resolve();
    await this.#release.promise;
  }
}

describe("shutdown", () => {
  it("a request arriving on an open connection while the server closes gets 503 Problem Details", async () => {
    // Why not an idle keep-alive socket: close() destroys idle connections at once
    // (Node's server.close() does, and Fastify runs it as its first close step), so a
    // request sent on one races the server's FIN. A connection with a request in flight is
    // never idle: it survives close(), and a request pipelined behind the in-flight one
    // arrives, deterministically, while the server is closing.
    const gate = new Gate();
    const server = new ThingServer([{ name: "gate", thing: gate }], {
      port: 0,
      shutdownTimeoutMs: WAIT_MS,
    });
    const port = Number(new URL(await server.start()).port);
    let closing: ReturnType<ThingServer["close"]> | undefined;
    const active = await RawConnection.open(port);
    const idle = await RawConnection.open(port);
    try {
      // 1. In flight: the head of a PUT; "100 Continue" says the server has parsed it.
      active.socket.write(
        "PUT /gate/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
          "Content-Length: 1\r\nExpect: 100-continue\r\n\r\n",
      );
      await active.until(/^HTTP\/1\.1 100 /, "100 Continue");

      // 2. An idle keep-alive connection: its closing tells when close() has begun.
      idle.socket.write("GET /gate/count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      await idle.until(/\r\n\r\n0$/, "the response on the idle connection");
      expect(parseResponses(idle.text)[0]).toMatchObject({ status: 200, body: "0" });

      closing = server.close();
      await within(idle.closed, "the server to close the idle connection");
      // 3. Finish the in-flight PUT within the grace a request still receiving its body
      //    gets (1 s): it completes.
      active.socket.write("7");
      await active.until(/HTTP\/1\.1 204 /, "the PUT's 204");
      await within(gate.stopEntered, "the server to stop the Thing");

      // 4. Pipeline a GET behind it on the same connection.
      active.socket.write("GET /gate/count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      await within(active.closed, "the server to close the active connection");

      const [continued, written, refused, ...more] = parseResponses(active.text);
      expect(continued?.status).toBe(100);
      expect(written?.status).toBe(204); // it began before the shutdown: it completes
      expect(gate.count).toBe(7);
      expect(more).toEqual([]);
      const problem = expectRawProblem(refused, 503);
      expect(refused?.headers.connection).toBe("close");
      expect(problem.instance).toBe("/gate/count");
    } finally {
      gate.release();
      active.socket.destroy();
      idle.socket.destroy();
      const report = await within(closing ?? server.close(), "close() to finish");
      expect(report).toMatchObject({ hungThings: [], failedThings: [], forced: false });
    }
  });

  it("connections that never sent a request do not hold up close()", async () => {
    const server = new ThingServer(microscopeEntries({ camera: false }), { port: 0 });
    const { port } = new URL(await server.start());
    // Browsers and fetch open spare connections; one is held open here, silent.
    const spare = connect({ host: "127.0.0.1", port: Number(port) });
    await within(once(spare, "connect"), "the spare connection");
    const closedByServer = once(spare, "close");
    const started = performance.now();
    const report = await within(server.close(), "close() to finish");
    const ms = performance.now() - started;
    expect(report.forced).toBe(false);
    expect(ms).toBeLessThan(1000); // the deadline is 5000 ms: waiting for the spare would hit it
    await within(closedByServer, "the server to close the spare connection");
  });
});

describe("server options", () => {
  it("apiPrefix '/api' serves everything under /api and nothing at the root", async () => {
    const server = microscope({ apiPrefix: "/api" });
    try {
      const url = await server.start();
      const root = new URL(url).origin;
      expect(url).toBe(`${root}/api`);

      const things = (await getJson(`${root}/api/things/`)) as Record<string, string>;
      expect(Object.keys(things).sort()).toEqual(["camera", "stage"]);
      expect(things.camera).toBe(`${root}/api/camera/`);

      expect(await getJson(`${root}/api/camera/exposureTime`)).toBe(10_000);
      expect((await putJson(`${root}/api/camera/exposureTime`, 20_000)).status).toBe(204);
      expect(await getJson(`${root}/api/camera/exposureTime`)).toBe(20_000);

      await expectProblem(await fetch(`${root}/camera/exposureTime`), 404);
      await expectProblem(await fetch(`${root}/things/`), 404);
    } finally {
      await server.close();
    }
  });

  const preflight = (url: string) =>
    fetch(url, {
      method: "OPTIONS",
      headers: {
        origin: "http://lab.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type",
      },
    });

  it("cors: true answers a preflight OPTIONS with access-control-allow-origin", async () => {
    const server = microscope({ cors: true });
    try {
      const url = await server.start();
      const response = await preflight(`${url}/camera/exposureTime`);
      expect(response.status).toBeGreaterThanOrEqual(200);
      expect(response.status).toBeLessThan(300);
      expect(response.headers.get("access-control-allow-origin")).toMatch(
        /^(\*|http:\/\/lab\.example)$/,
      );
      expect(response.headers.get("access-control-allow-methods") ?? "").toMatch(/PUT/);

      const get = await fetch(`${url}/camera/exposureTime`, {
        headers: { origin: "http://lab.example" },
      });
      expect(get.status).toBe(200);
      expect(get.headers.get("access-control-allow-origin")).toMatch(
        /^(\*|http:\/\/lab\.example)$/,
      );
    } finally {
      await server.close();
    }
  });

  it("without the cors option no CORS headers are sent", async () => {
    const response = await preflight(`${base}/camera/exposureTime`);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    const get = await fetch(`${base}/camera/exposureTime`, {
      headers: { origin: "http://lab.example" },
    });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("GET /openapi.json is OpenAPI 3.1 with a path for every property", async () => {
    const document = (await getJson(`${base}/openapi.json`)) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(document.paths["/camera/exposureTime"]).toHaveProperty("get");
    expect(document.paths["/camera/exposureTime"]).toHaveProperty("put");
    expect(document.paths["/stage/position"]).toHaveProperty("get");
    expect(document.paths["/stage/position"]).not.toHaveProperty("put");
    expect(document.paths["/camera/properties"]).toHaveProperty("get");
    expect(document.paths["/camera/properties"]).toHaveProperty("put");

    // Every property of every Thing, as the Thing Descriptions list them.
    for (const thing of ["stage", "camera"]) {
      const td = (await getJson(`${base}/${thing}/`)) as {
        properties: Record<string, { readOnly?: boolean; writeOnly?: boolean }>;
      };
      expect(Object.keys(td.properties).length).toBeGreaterThan(0);
      for (const [name, affordance] of Object.entries(td.properties)) {
        const path = document.paths[`/${thing}/${name}`];
        expect(path, `/${thing}/${name}`).toBeDefined();
        if (!affordance.writeOnly) expect(path, `GET /${thing}/${name}`).toHaveProperty("get");
        if (affordance.readOnly) expect(path, `PUT /${thing}/${name}`).not.toHaveProperty("put");
        else expect(path, `PUT /${thing}/${name}`).toHaveProperty("put");
      }
    }
  });

  it("GET /docs returns an HTML page branded labthings-ts, pointing at /openapi.json", async () => {
    const response = await fetch(`${base}/docs`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html\b/);
    const html = await response.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain("<title>labthings-ts: API docs</title>");
    const initializer = await (await fetch(`${base}/docs/static/swagger-initializer.js`)).text();
    expect(initializer).toContain('"url":"/openapi.json"');
    expect(initializer).toContain("data:image/svg+xml;base64");
  });
});
