/**
 * TD Directory registration. No maintained W3C TD Directory installs from npm or Debian
 * here, so the directory is a small server in this file implementing the Things API calls
 * the server makes (WoT Discovery, Things API: PUT /things/{id}, PATCH /things/{id},
 * DELETE /things/{id}, GET /things), recording every request; the tests assert the exact
 * requests: method, path, content type, token, body, time-to-live, renewal and delete.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { property, Thing, type ThingEntry, ThingServer, Type } from "../src/index.js";
import { LogCapture } from "./support/log-capture.js";
import { freePort } from "./support/mosquitto.js";
import { until } from "./support/within.js";

const DISCOVERY_CONTEXT = "https://www.w3.org/2022/wot/discovery";
const TOKEN = "directory-token-0123456789";

class Probe extends Thing {
  static override title = "Probe";
  @property({ schema: Type.Number() })
  accessor reading = 1;
}

interface Recorded {
  method: string;
  path: string;
  contentType?: string;
  authorization?: string;
  body: string;
  at: number;
}

type Handler = (request: Recorded, response: ServerResponse) => boolean | undefined;

/** A Things API (create/update with PUT, renew with PATCH, delete, list) that records. */
class DirectoryStandIn {
  readonly requests: Recorded[] = [];
  readonly store = new Map<string, unknown>();
  /** Answer differently: return true when the response was sent. */
  override: Handler | undefined;
  server: Server | undefined;

  async listen(port = 0): Promise<string> {
    this.server = createServer((request, response) => void this.#handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}/`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  waitFor(test: (requests: Recorded[]) => boolean, what: string): Promise<void> {
    return until(() => test(this.requests), what);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of request) body += chunk;
    const recorded: Recorded = {
      method: request.method!,
      path: request.url!,
      contentType: request.headers["content-type"],
      authorization: request.headers.authorization,
      body,
      at: performance.now(),
    };
    this.requests.push(recorded);
    if (this.override?.(recorded, response)) return;
    const id = decodeURIComponent(recorded.path.replace(/^\/things\//, ""));
    if (recorded.method === "PUT") {
      const existed = this.store.has(id);
      this.store.set(id, JSON.parse(body));
      response.writeHead(existed ? 204 : 201).end();
    } else if (recorded.method === "PATCH") {
      response.writeHead(this.store.has(id) ? 204 : 404).end();
    } else if (recorded.method === "DELETE") {
      response.writeHead(this.store.delete(id) ? 204 : 404).end();
    } else if (recorded.method === "GET" && recorded.path === "/things") {
      response
        .writeHead(200, { "content-type": "application/ld+json" })
        .end(JSON.stringify([...this.store.values()]));
    } else {
      response.writeHead(405).end();
    }
  }
}

const servers: ThingServer[] = [];
const directories: DirectoryStandIn[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  await Promise.all(directories.splice(0).map((directory) => directory.close()));
});

function startServer(
  directoryUrl: string,
  options: { ttlSeconds?: number; token?: string; shutdownTimeoutMs?: number } = {},
) {
  const logs = new LogCapture("info");
  const entries: ThingEntry[] = [
    { name: "probe", thing: new Probe() },
    { name: "other", thing: new Probe(), id: "urn:dev:ops:lab-probe-2" },
  ];
  const server = new ThingServer(entries, {
    port: 0,
    logger: logs.logger,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    directory: {
      url: directoryUrl,
      token: options.token,
      ttlSeconds: options.ttlSeconds ?? 1,
      retryMs: { first: 100, max: 400 },
    },
  });
  servers.push(server);
  return { server, logs };
}

async function directory(): Promise<[DirectoryStandIn, string]> {
  const standIn = new DirectoryStandIn();
  directories.push(standIn);
  return [standIn, await standIn.listen()];
}

describe("TD Directory registration (W3C Directory API)", () => {
  it("PUTs each TD at /things/{id} with registration.ttl, renews with an empty merge patch before it expires, DELETEs at shutdown", async () => {
    const [tdd, url] = await directory();
    const { server } = startServer(url, { token: TOKEN, ttlSeconds: 1 });
    const base = await server.start();
    const td = (await (await fetch(`${base}/probe/`)).json()) as { id: string };
    expect(td.id).toMatch(/^urn:uuid:/);

    await tdd.waitFor(
      (r) => r.filter((x) => x.method === "PATCH").length >= 4,
      "two renewals of each TD",
    );
    const puts = tdd.requests.filter((r) => r.method === "PUT");
    expect(puts.map((r) => r.path).sort()).toEqual(
      [
        `/things/${encodeURIComponent(td.id)}`,
        `/things/${encodeURIComponent("urn:dev:ops:lab-probe-2")}`,
      ].sort(),
    );
    for (const put of puts) {
      expect(put.contentType).toBe("application/td+json");
      expect(put.authorization).toBe(`Bearer ${TOKEN}`);
      const body = JSON.parse(put.body) as Record<string, unknown>;
      expect(body["@context"]).toEqual([
        "https://www.w3.org/2022/wot/td/v1.1",
        DISCOVERY_CONTEXT,
        { htv: "http://www.w3.org/2011/http#" },
      ]);
      expect(body.registration).toEqual({ ttl: 1 });
      expect(decodeURIComponent(put.path.slice("/things/".length))).toBe(body.id);
      expect(body.base).toBe(`${server.publicUrl}/${body.id === td.id ? "probe" : "other"}/`);
      expect(body.properties).toHaveProperty("reading");
    }
    const patches = tdd.requests.filter((r) => r.method === "PATCH");
    for (const patch of patches) {
      expect(patch.contentType).toBe("application/merge-patch+json");
      expect(patch.body).toBe("{}");
      expect(patch.authorization).toBe(`Bearer ${TOKEN}`);
    }
    // Renewed at half the TTL: each TD's first renewal comes well before its expiry.
    const put = puts.find((r) => r.path.includes(encodeURIComponent(td.id)))!;
    const firstRenewal = patches.find((r) => r.path === put.path)!;
    expect(firstRenewal.at - put.at).toBeLessThan(1000);

    const report = await server.close();
    expect(report.directoryNotDeleted).toEqual([]);
    const deletes = tdd.requests.filter((r) => r.method === "DELETE");
    expect(deletes.map((r) => r.path).sort()).toEqual(puts.map((r) => r.path).sort());
    expect(deletes.every((r) => r.authorization === `Bearer ${TOKEN}` && r.body === "")).toBe(true);
    expect(tdd.store.size).toBe(0);
  });

  it("a directory that lost the TD (404 on renewal) gets it again with PUT; one without PATCH (405) is renewed with PUT", async () => {
    const [tdd, url] = await directory();
    const { server } = startServer(url);
    await server.start();
    await tdd.waitFor((r) => r.filter((x) => x.method === "PUT").length === 2, "the registrations");
    tdd.store.clear(); // the directory restarted and forgot everything
    await tdd.waitFor(
      (r) => r.filter((x) => x.method === "PUT").length === 4,
      "the registrations again",
    );
    expect(tdd.requests.filter((r) => r.method === "PATCH").length).toBeGreaterThanOrEqual(2);
    expect(tdd.store.size).toBe(2);

    tdd.override = (request, response) => {
      if (request.method !== "PATCH") return false;
      response.writeHead(405, { allow: "GET, PUT, DELETE" }).end();
      return true;
    };
    const before = tdd.requests.length;
    await tdd.waitFor(
      (r) => r.slice(before).filter((x) => x.method === "PUT").length >= 4,
      "renewals by PUT",
    );
    // After the first 405 no more PATCHes: every renewal is a PUT.
    const after = tdd.requests.slice(before);
    const firstPut = after.findIndex((r) => r.method === "PUT");
    expect(after.slice(firstPut).filter((r) => r.method === "PATCH").length).toBeLessThanOrEqual(1);
  });

  it("a directory that is down delays nothing; it is retried with backoff and registered once it is up", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const { server, logs } = startServer(url);
    const started = performance.now();
    await server.start();
    expect(performance.now() - started).toBeLessThan(2000);
    await logs.waitFor(
      (line) => String(line.msg).startsWith("TD directory unreachable"),
      "the retry in the log",
    );
    const tdd = new DirectoryStandIn();
    directories.push(tdd);
    await tdd.listen(port);
    await tdd.waitFor(
      (r) => r.filter((x) => x.method === "PUT").length === 2,
      "the registrations after the directory came up",
    );
    await logs.waitFor(
      (line) => String(line.msg).startsWith("registered 'probe'"),
      "the registration in the log",
    );
  });

  it("a refusal is logged with the directory's Problem Details; a hung directory does not hold up shutdown", async () => {
    const [tdd, url] = await directory();
    tdd.override = (request, response) => {
      if (request.method === "PUT") {
        response.writeHead(400, { "content-type": "application/problem+json" }).end(
          JSON.stringify({
            title: "Bad Request",
            status: 400,
            detail: "The input did not pass the JSON Schema validation",
            validationErrors: [{ field: "(root).title", description: "title is required" }],
          }),
        );
        return true;
      }
      if (request.method === "DELETE") return true; // never answers
      return false;
    };
    const { server, logs } = startServer(url, { shutdownTimeoutMs: 1500 });
    await server.start();
    const refusal = await logs.waitFor(
      (line) => String(line.msg).startsWith("TD directory refused PUT"),
      "the refusal",
    );
    expect(refusal.level).toBe(50);
    expect(refusal.msg).toContain("The input did not pass the JSON Schema validation");
    expect(refusal.problem).toMatchObject({
      status: 400,
      title: "Bad Request",
      validationErrors: [{ field: "(root).title", description: "title is required" }],
    });
    // Accepted after all, then the directory hangs on DELETE.
    tdd.override = (request) => request.method === "DELETE" || undefined;
    await tdd.waitFor(() => tdd.store.size === 2, "the retried registrations");
    await sleep(50);
    const report = await server.close();
    expect(report.forced).toBe(false);
    expect(report.durationMs).toBeLessThan(1500 + 250);
    expect(report.directoryNotDeleted.sort()).toEqual(["other", "probe"]);
  });

  it("a redirect is not followed: the token goes to the configured directory only", async () => {
    const [elsewhere, elsewhereUrl] = await directory();
    const [tdd, url] = await directory();
    tdd.override = (request, response) => {
      response.writeHead(307, { location: new URL(request.path, elsewhereUrl).href }).end();
      return true;
    };
    const { server, logs } = startServer(url, { token: TOKEN });
    await server.start();
    const line = await logs.waitFor(
      (l) => String(l.msg).startsWith("TD directory refused PUT"),
      "the refusal",
    );
    expect(line.msg).toContain("not followed");
    await sleep(200);
    expect(elsewhere.requests).toEqual([]);
  });
});
