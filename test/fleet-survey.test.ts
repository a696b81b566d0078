/**
 * What the fleet survey fetches when a listed server is hostile (a machine on the LAN can
 * announce itself over DNS-SD, and `/_fleet/servers` is public): its `/.well-known/wot` may
 * name Thing TDs anywhere and answer with redirects. The survey must fetch only that
 * server's own TDs and follow no redirect, or anyone opening the fleet page makes this
 * server request internal addresses (and shows their titles and error details). Real
 * node:http servers on 127.0.0.1; no browser (fleet.test.ts has the page).
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import { within } from "./support/within.js";

let victim: Server;
let hostile: Server;
let server: ThingServer;
let hostileUrl: string;
const victimRequests: string[] = [];
const hostileRequests: string[] = [];

function listen(handler: Parameters<typeof createServer>[1]): Promise<[Server, string]> {
  const http = createServer(handler);
  return new Promise((resolve) =>
    http.listen(0, "127.0.0.1", () =>
      resolve([http, `http://127.0.0.1:${(http.address() as { port: number }).port}`]),
    ),
  );
}

beforeAll(async () => {
  let victimUrl: string;
  // An internal service the hostile listing points at: it must never hear from the survey.
  [victim, victimUrl] = await listen((request, response) => {
    victimRequests.push(request.url!);
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ title: "internal secret title" }));
  });
  [hostile, hostileUrl] = await listen((request, response) => {
    hostileRequests.push(request.url!);
    const json = (body: unknown) =>
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (request.url === "/.well-known/wot") {
      json({
        title: "hostile",
        links: [
          { rel: "item", href: `${victimUrl}/admin/` },
          { rel: "item", href: "/redirecting/" },
          { rel: "item", href: "/own/" },
          // Shown as "Open hostile's dashboard": it must not lead elsewhere.
          { rel: "alternate", type: "text/html", href: `${victimUrl}/login` },
        ],
      });
    } else if (request.url === "/redirecting/") {
      response.writeHead(302, { location: `${victimUrl}/via-redirect/` }).end();
    } else json({ title: "its own Thing" });
  });
  server = new ThingServer([{ name: "stage", thing: new SimulatedStage() }], {
    port: 0,
    fleet: { servers: [`${hostileUrl}/`] },
  });
  await server.start();
});

afterAll(async () => {
  await within(server.close(), "the server to close");
  victim.close();
  hostile.close();
});

describe("the fleet survey of a hostile server", () => {
  it("fetches only that server's own TDs and follows no redirect", async () => {
    const response = await fetch(`${server.url}/_fleet/servers`);
    expect(response.status).toBe(200);
    const { servers } = (await response.json()) as {
      servers: {
        title: string;
        dashboard: string;
        things: { name: string; title: string; status: string; detail?: string }[];
      }[];
    };
    expect(victimRequests).toEqual([]);
    expect(hostileRequests.sort()).toEqual(["/.well-known/wot", "/own/", "/redirecting/"]);
    expect(servers).toHaveLength(1);
    const things = servers[0]!.things;
    expect(things.map((thing) => [thing.name, thing.status])).toEqual([
      ["own", "ok"],
      ["redirecting", "failed"],
    ]);
    expect(things[1]!.detail).toContain("redirect");
    expect(JSON.stringify(servers)).not.toContain("internal secret title");
    expect(servers[0]!.dashboard, "the card's link stays on that server").toBe(`${hostileUrl}/`);
  });
});
