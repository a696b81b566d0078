/**
 * Request limits against a real server on 127.0.0.1 and raw sockets: over-long URLs
 * (414), over-large headers (431), JSON nested too deep (400), slow-loris clients that
 * send their headers or body too slowly (408, then closed), and the cap on streams,
 * event streams and websockets per client address (429). Each refusal is Problem
 * Details, changes nothing, and leaves the server answering everyone else.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ThingServer } from "../src/index.js";
import { getJson, putJson } from "./support/json-http.js";
import { microscopeEntries, TINY_CAMERA } from "./support/microscope.js";
import { expectProblem, expectRawProblem } from "./support/problem.js";
import { parseResponses, RawConnection } from "./support/raw-http.js";
import { within } from "./support/within.js";

/** Short timeouts so the slow-loris tests finish quickly; the defaults are 10 s / 30 s. */
const HEADERS_TIMEOUT_MS = 600;
const REQUEST_TIMEOUT_MS = 1200;
const STREAMS_PER_CLIENT = 3;

let server: ThingServer;
let base: string;
let port: number;

beforeAll(async () => {
  server = new ThingServer(microscopeEntries({ camera: TINY_CAMERA }), {
    port: 0,
    limits: {
      urlBytes: 2048,
      headerBytes: 4096,
      jsonDepth: 8,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      streamsPerClient: STREAMS_PER_CLIENT,
    },
  });
  base = await server.start();
  port = Number(new URL(base).port);
});

afterAll(async () => {
  await server?.close();
});

/** The Problem Details Node-level refusals carry (no `instance`: no request was parsed). */
function expectConnectionProblem(text: string, status: number): void {
  const [response] = parseResponses(text);
  expect(response?.status, text).toBe(status);
  expect(response?.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(response?.headers.connection).toBe("close");
  const problem = JSON.parse(response?.body ?? "{}");
  expect(problem).toMatchObject({ status, title: expect.any(String) });
  expect(problem.detail).toEqual(expect.any(String));
  expect(problem.type).toMatch(/^tag:labthings-ts/);
}

describe("sizes", () => {
  it("a URL longer than limits.urlBytes gets 414 Problem Details, and the next request works", async () => {
    const response = await fetch(`${base}/stage/${"x".repeat(2100)}`);
    const problem = await expectProblem(response, 414);
    expect(problem.detail).toMatch(/2048/);
    expect(await getJson(`${base}/stage/speed`)).toBe(2000);
  });

  it("headers larger than limits.headerBytes get 431 Problem Details and the connection closes", async () => {
    const connection = await RawConnection.open(port);
    connection.socket.write(
      `GET /stage/speed HTTP/1.1\r\nHost: x\r\nX-Padding: ${"y".repeat(5000)}\r\n\r\n`,
    );
    await within(connection.closed, "the connection to close");
    expectConnectionProblem(connection.text, 431);
    expect(connection.text).toMatch(/4096/);
  });

  it("JSON nested deeper than limits.jsonDepth is refused with 400 before parsing; the value is unchanged", async () => {
    const before = await getJson(`${base}/camera/colourGains`);
    const deep = `${"[".repeat(9)}1${"]".repeat(9)}`;
    const response = await fetch(`${base}/camera/colourGains`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: deep,
    });
    const problem = await expectProblem(response, 400);
    expect(problem.detail).toMatch(/deeper than 8/);
    // A huge one is refused as cheaply (a recursive parser would be the risk).
    const huge = await fetch(`${base}/camera/colourGains`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: "[".repeat(500_000),
    });
    await expectProblem(huge, 400);
    // Brackets inside strings do not count.
    const stringy = await putJson(`${base}/camera/colourGains`, {
      red: 1,
      blue: 1,
      ["[[[[[[[[[[" as string]: 1,
    });
    await expectProblem(stringy, 400); // additionalProperties, not depth
    expect(await getJson(`${base}/camera/colourGains`)).toEqual(before);
    expect((await putJson(`${base}/camera/colourGains`, { red: 2, blue: 1 })).status).toBe(204);
  });
});

describe("slow clients (slow-loris)", () => {
  it("a client that sends its headers too slowly gets 408 and is closed; others are served meanwhile", async () => {
    const connection = await RawConnection.open(port);
    const started = performance.now();
    connection.socket.write("GET /stage/speed HTTP/1.1\r\nHost: x\r\n");
    // Keep trickling header bytes, as a slow-loris client does, so the connection is never idle.
    const trickle = setInterval(() => {
      if (!connection.socket.destroyed) connection.socket.write("X-A: b\r\n");
    }, 100);
    try {
      expect(await getJson(`${base}/stage/speed`)).toBe(2000);
      await within(connection.closed, "the slow connection to be closed", 5000);
    } finally {
      clearInterval(trickle);
    }
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expectConnectionProblem(connection.text, 408);
  });

  it("a client that sends its body too slowly gets 408 and the property is unchanged", async () => {
    const connection = await RawConnection.open(port);
    connection.socket.write(
      "PUT /stage/speed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n1",
    );
    const trickle = setInterval(() => {
      if (!connection.socket.destroyed) connection.socket.write(" ");
    }, 300);
    try {
      await within(connection.closed, "the slow connection to be closed", 5000);
    } finally {
      clearInterval(trickle);
    }
    expect(connection.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(await getJson(`${base}/stage/speed`)).toBe(2000);
  });

  it("a connection that never sends a byte is closed after the headers timeout", async () => {
    const connection = await RawConnection.open(port);
    await within(connection.closed, "the silent connection to be closed", 5000);
  });
});

describe(`at most ${STREAMS_PER_CLIENT} streams per client address`, () => {
  it("MJPEG, SSE and websockets share the cap; one more gets 429 Problem Details; closing one frees a place", async () => {
    const controllers: AbortController[] = [];
    const open = async (path: string, accept?: string) => {
      const controller = new AbortController();
      controllers.push(controller);
      const response = await fetch(`${base}${path}`, {
        signal: controller.signal,
        headers: accept ? { accept } : {},
      });
      return response;
    };
    try {
      expect((await open("/camera/stream")).status).toBe(200);
      expect((await open("/stage/speed", "text/event-stream")).status).toBe(200);
      const socket = new WebSocket(`${base.replace("http", "ws")}/stage/ws`);
      await within(
        new Promise((resolve, reject) => {
          socket.once("open", resolve);
          socket.once("error", reject);
        }),
        "the websocket to open",
      );
      // The fourth of any kind is refused, before anything is streamed.
      await expectProblem(await open("/camera/stream"), 429);
      const sse = await open("/stage/properties", "text/event-stream");
      const problem = await expectProblem(sse, 429);
      expect(problem.detail).toMatch(/127\.0\.0\.1/);
      const refused = new WebSocket(`${base.replace("http", "ws")}/stage/ws`);
      const status = await within(
        new Promise<number>((resolve) => {
          refused.once("unexpected-response", (_request, response) =>
            resolve(response.statusCode ?? 0),
          );
          refused.once("open", () => resolve(101));
        }),
        "the fourth websocket to be answered",
      );
      expect(status).toBe(429);
      // Ordinary requests are not capped.
      expect(await getJson(`${base}/stage/speed`)).toBe(2000);

      // Closing the websocket frees a place once the server has seen it close.
      socket.close();
      const deadline = Date.now() + 5000;
      let again: Response | undefined;
      while (Date.now() < deadline) {
        again = await open("/camera/stream");
        if (again.status === 200) break;
        await again.body?.cancel();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(again?.status).toBe(200);
    } finally {
      for (const controller of controllers) controller.abort();
    }
  });
});

describe("configuration", () => {
  it("a headers timeout longer than the request timeout is a ConfigError naming the key", () => {
    expect(
      () => new ThingServer([], { limits: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }),
    ).toThrow(/limits\.headersTimeoutMs/);
  });
});

// The Problem Details helper for raw responses is used for 414 via a raw socket too.
describe("raw 414", () => {
  it("is Problem Details on a keep-alive connection, which stays usable", async () => {
    const connection = await RawConnection.open(port);
    connection.socket.write(
      `GET /${"a".repeat(3000)} HTTP/1.1\r\nHost: x\r\n\r\nGET /stage/speed HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    await connection.responses(2, "two responses");
    const [tooLong, next] = parseResponses(connection.text);
    expectRawProblem(tooLong, 414);
    expect(next?.status).toBe(200);
    connection.socket.destroy();
  });
});
