/**
 * Pages of other sites cannot act on the microscope through a lab member's browser, with
 * real Chromium and a page served from another origin on 127.0.0.1. With CORS closed such
 * a page cannot read our answers, but "simple" requests (a body-less POST with
 * `mode: "no-cors"`, an HTML form) reach the server all the same; since actions accept a
 * body-less POST (labthings-fastapi's clients), a page anywhere could start
 * `autofocus/run` (which moves the stage) on a server without a token. The page's own
 * server, origins listed in `cors`, and clients that are not browsers are untouched.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket as NodeWebSocket } from "ws";
import { ThingServer } from "../src/index.js";
import { launchChromium } from "./support/chromium.js";
import { microscopeEntries, TINY_CAMERA } from "./support/microscope.js";
import { expectProblem } from "./support/problem.js";
import { within } from "./support/within.js";

/** Every action of the microscope that takes a body-less POST. */
const BODYLESS = ["/camera/capture", "/autofocus/run", "/stage/moveRelative"];

let browser: Browser;
let page: Server;
let pageOrigin: string;
const servers: ThingServer[] = [];

async function microscope(cors?: string[]): Promise<string> {
  const server = new ThingServer(
    microscopeEntries({ camera: TINY_CAMERA, autofocus: true }),
    cors ? { port: 0, cors } : { port: 0 },
  );
  servers.push(server);
  return server.start();
}

/**
 * Runs in the page: opens a websocket, observes the stage's speed and writes it once (from
 * the test's side, below, the write comes over HTTP), and reports what it heard in 3 s.
 */
function openWebSocket(url: string): Promise<{ opened: boolean; messages: unknown[] }> {
  return new Promise((resolve) => {
    const messages: unknown[] = [];
    let opened = false;
    const socket = new WebSocket(url);
    socket.onopen = () => {
      opened = true;
      socket.send(JSON.stringify({ messageType: "addPropertyObservation", data: { speed: true } }));
      void fetch(url.replace(/^ws/, "http").replace(/ws$/, "speed"), {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: "2500",
      }).catch(() => undefined);
    };
    socket.onmessage = (event) => {
      messages.push(JSON.parse(String(event.data)));
      socket.close();
    };
    socket.onclose = () => resolve({ opened, messages });
    setTimeout(() => resolve({ opened, messages }), 3000);
  });
}

async function invocationIds(base: string): Promise<string[]> {
  const list = (await (await fetch(`${base}/action_invocations/`)).json()) as { id: string }[];
  return list.map((invocation) => invocation.id);
}

beforeAll(async () => {
  // Another site: a page of its own, on another port (another origin, the same site).
  page = createServer((_request, response) => {
    response
      .writeHead(200, { "content-type": "text/html" })
      .end("<!doctype html><title>elsewhere</title>");
  });
  page.listen(0, "127.0.0.1");
  await within(once(page, "listening"), "the page's server");
  pageOrigin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  browser = await within(launchChromium(), "Chromium to launch");
});

afterAll(async () => {
  await browser?.close();
  page?.close();
  await Promise.all(servers.map((server) => server.close()));
});

describe("a page of another site", () => {
  it("cannot start actions with body-less POSTs or a form; nothing is invoked", async () => {
    const base = await microscope();
    const before = await invocationIds(base);
    const tab = await browser.newPage();
    try {
      await tab.goto(`${pageOrigin}/`);
      await tab.evaluate(
        ([base, paths]) =>
          Promise.all(paths.map((path) => fetch(base + path, { method: "POST", mode: "no-cors" }))),
        [base, BODYLESS] as const,
      );
      // A form needs no script at all.
      await Promise.all([
        tab.waitForLoadState("load"),
        tab.evaluate((action) => {
          const form = document.createElement("form");
          form.method = "POST";
          form.action = action;
          document.body.append(form);
          form.submit();
        }, `${base}/camera/capture`),
      ]);
      expect(await tab.textContent("body")).toContain("another site");
    } finally {
      await tab.close();
    }
    expect(await invocationIds(base)).toEqual(before);
    // What the browser sent, from Node: Problem Details naming the way out.
    const problem = await expectProblem(
      await fetch(`${base}/camera/capture`, { method: "POST", headers: { origin: pageOrigin } }),
      403,
    );
    expect(problem.type).toBe("tag:labthings-ts,2026:cross-origin");
    expect(problem.detail).toContain("'cors'");
  });

  it("cannot open a websocket to watch properties (CORS keeps fetch from reading them too)", async () => {
    const base = await microscope();
    const tab = await browser.newPage();
    try {
      await tab.goto(`${pageOrigin}/`);
      const heard = await tab.evaluate(openWebSocket, `${base.replace(/^http/, "ws")}/stage/ws`);
      expect(heard).toEqual({ opened: false, messages: [] });
      // Its own page, and a Node client (no Origin), still observe.
      await tab.goto(`${base}/`);
      const own = await tab.evaluate(openWebSocket, `${base.replace(/^http/, "ws")}/stage/ws`);
      expect(own.opened).toBe(true);
      expect(own.messages[0]).toMatchObject({ messageType: "propertyStatus" });
    } finally {
      await tab.close();
    }
    // What the browser sent, from Node: a 403 naming the way out.
    const refusal = await within(
      new Promise<{ status?: number; body: string }>((resolve, reject) => {
        const socket = new NodeWebSocket(`${base.replace(/^http/, "ws")}/stage/ws`, {
          origin: pageOrigin,
        });
        socket.on("unexpected-response", (_request, response) => {
          let body = "";
          response.on("data", (chunk: Buffer) => {
            body += chunk.toString();
          });
          response.on("end", () => resolve({ status: response.statusCode, body }));
        });
        socket.on("open", () => reject(new Error("the websocket opened")));
        socket.on("error", () => undefined);
      }),
      "the refused handshake",
    );
    expect(refusal.status).toBe(403);
    expect(JSON.parse(refusal.body).detail).toContain("'cors' setting to let its pages observe");
  });

  it("acts when the server lists its origin in cors", async () => {
    const base = await microscope([pageOrigin]);
    const tab = await browser.newPage();
    try {
      await tab.goto(`${pageOrigin}/`);
      const statuses = await tab.evaluate(
        ([base, paths]) =>
          Promise.all(
            paths.map(async (path) => (await fetch(base + path, { method: "POST" })).status),
          ),
        [base, BODYLESS] as const,
      );
      expect(statuses).toEqual([201, 201, 201]);
      const heard = await tab.evaluate(openWebSocket, `${base.replace(/^http/, "ws")}/stage/ws`);
      expect(heard.opened).toBe(true);
    } finally {
      await tab.close();
    }
  });
});

describe("pages of the server itself and clients that are not browsers", () => {
  it("a page the server serves invokes and writes as before; so do Node's fetch and curl-like clients", async () => {
    const base = await microscope();
    const tab = await browser.newPage();
    try {
      await tab.goto(`${base}/`);
      const statuses = await tab.evaluate(async () => [
        (await fetch("/camera/capture", { method: "POST" })).status,
        (
          await fetch("/stage/speed", {
            method: "PUT",
            headers: { "content-type": "application/json" },
            body: "3000",
          })
        ).status,
      ]);
      expect(statuses).toEqual([201, 204]);
    } finally {
      await tab.close();
    }
    expect((await fetch(`${base}/camera/capture`, { method: "POST" })).status).toBe(201);
  });
});
