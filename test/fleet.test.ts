/**
 * The fleet page (`/_fleet/`) in headless Chromium. Server A lists the servers given in
 * its config (B, C, and one that is down) and those its TD directory lists (a stand-in
 * here, with which B registers too). DNS-SD as a source is covered in dns-sd.test.ts, in a
 * network namespace; here no mDNS runs. Every server is a real one on 127.0.0.1, the page
 * a real browser, the thumbnails real JPEG snapshots loaded across origins.
 */
import { mkdir } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import { launchChromium } from "./support/chromium.js";
import { freePort } from "./support/mosquitto.js";
import { within } from "./support/within.js";

const RESULTS = new URL("../test-results/", import.meta.url);
const TOKEN = "fleet-test-token-0123456789";

let a: ThingServer;
let b: ThingServer;
let c: ThingServer;
let directory: Server;
let browser: Browser;
let page: Page;
let urls: { a: string; b: string; c: string; dead: string };
const pageErrors: string[] = [];
const camera = () => new SimulatedCamera({ width: 160, height: 120, fps: 5 });

/** A TD directory that keeps what is PUT and lists it (enough for the fleet survey). */
async function startDirectory(): Promise<string> {
  const store = new Map<string, unknown>();
  directory = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    if (request.method === "PUT") {
      store.set(request.url!, JSON.parse(body));
      response.writeHead(201).end();
    } else if (request.method === "GET" && request.url === "/things") {
      response
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify([...store.values()]));
    } else response.writeHead(204).end();
  });
  await new Promise<void>((resolve) => directory.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(directory.address() as { port: number }).port}/`;
}

beforeAll(async () => {
  await mkdir(RESULTS, { recursive: true });
  const directoryUrl = await startDirectory();
  b = new ThingServer(
    [
      { name: "camera", thing: camera() },
      { name: "stage", thing: new SimulatedStage() },
    ],
    { port: 0, directory: { url: directoryUrl, ttlSeconds: 60 } },
  );
  c = new ThingServer(
    [
      { name: "camera", thing: camera() },
      { name: "stage", thing: new SimulatedStage() },
    ],
    { port: 0, authToken: TOKEN },
  );
  const [bUrl, cUrl] = await Promise.all([b.start(), c.start()]);
  const dead = `http://127.0.0.1:${await freePort()}/`;
  a = new ThingServer([{ name: "stage", thing: new SimulatedStage() }], {
    port: 0,
    directory: { url: directoryUrl, ttlSeconds: 60 },
    fleet: { servers: [`${bUrl}/`, `${cUrl}/`, dead] },
  });
  urls = { a: `${await a.start()}/`, b: `${bUrl}/`, c: `${cUrl}/`, dead };
  browser = await within(launchChromium(), "Chromium to launch");
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${urls.a}_fleet/`);
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([a?.close(), b?.close(), c?.close()]);
  await new Promise((resolve) => directory?.close(resolve));
});

const card = (url: string) => page.locator(`article.fleet-card[data-server="${url}"]`);

describe("the fleet page", () => {
  it("lists this server, then each other one with its sources, status and Things", async () => {
    await card(urls.b).waitFor();
    await card(urls.dead).waitFor();
    await expect.poll(() => page.locator("article.fleet-card").count()).toBe(4);
    const self = page.locator("article.fleet-card").first();
    expect(await self.locator("h2").textContent()).toBe("This server");

    const bCard = card(urls.b);
    expect(await bCard.locator("h2").textContent()).toMatch(/^labthings-ts on /);
    expect(await bCard.locator(".fleet-badge").allTextContents()).toEqual([
      "configured",
      "in the TD directory",
    ]);
    expect(await bCard.locator(".fleet-online").textContent()).toBe("online");
    expect(await bCard.locator(".fleet-thing .fleet-name").allTextContents()).toEqual([
      "camera",
      "stage",
    ]);
    expect(await bCard.locator("a.fleet-open").getAttribute("href")).toBe(urls.b);

    const deadCard = card(urls.dead);
    expect(await deadCard.locator(".fleet-offline").textContent()).toBe("not answering");
    expect(await deadCard.locator(".fleet-thing").count()).toBe(0);
    // Why, not only fetch's "fetch failed".
    expect(await deadCard.textContent()).toContain("(connect ECONNREFUSED 127.0.0.1:");
    expect(pageErrors).toEqual([]);
  });

  it("shows a live thumbnail of each camera, loaded from its own server without CORS, refreshed", async () => {
    const thumbs = card(urls.b).locator("img.fleet-thumb");
    await expect.poll(() => thumbs.count()).toBe(2); // the stream (160 px wide) and its half-size preview
    const loaded = () =>
      thumbs.evaluateAll((images) => images.map((img) => (img as HTMLImageElement).naturalWidth));
    await expect.poll(loaded, { timeout: 10_000 }).toEqual([160, 80]);
    const first = await thumbs.first().getAttribute("src");
    await expect
      .poll(() => thumbs.first().getAttribute("src"), { timeout: 10_000 })
      .not.toBe(first);
    expect(await thumbs.first().getAttribute("src")).toMatch(
      new RegExp(`^${urls.b}camera/stream/snapshot\\?t=\\d+$`),
    );
    await expect.poll(loaded).toEqual([160, 80]);
    await page.screenshot({ path: new URL("fleet.png", RESULTS).pathname, fullPage: true });
  });

  it("sends no token anywhere: a Thing that needs one is listed without a thumbnail", async () => {
    const cCard = card(urls.c);
    await cCard.waitFor();
    expect(await cCard.locator(".fleet-thing .fleet-name").allTextContents()).toEqual([
      "camera",
      "stage",
    ]);
    expect(await cCard.locator("img").count()).toBe(0);
    expect(await cCard.locator(".fleet-note").allTextContents()).toContain(
      "Needs a token: open its dashboard to see the camera.",
    );
  });

  it("with authentication on, the listing needs a token; the tab's own token lists it, thumbnails included", async () => {
    expect((await fetch(`${urls.c}_fleet/servers`)).status).toBe(401);
    expect((await fetch(`${urls.c}_fleet/`)).status).toBe(200); // the page holds no data
    const tab = await browser.newPage();
    try {
      await tab.goto(`${urls.c}_fleet/`);
      await expect
        .poll(() => tab.locator("#fleet-status").textContent())
        .toContain("This server needs a token to list its fleet");
      expect(await tab.locator("article.fleet-card").count()).toBe(0);
      // As the dashboard's links do: the token in the fragment, kept for this tab only.
      await tab.goto("about:blank");
      await tab.goto(`${urls.c}_fleet/#token=${TOKEN}`);
      await expect.poll(() => new URL(tab.url()).hash).toBe("");
      const self = tab.locator("article.fleet-card").first();
      await self.waitFor();
      expect(await self.locator("h2").textContent()).toBe("This server");
      const thumbs = self.locator("img.fleet-thumb");
      await expect.poll(() => thumbs.count()).toBe(2);
      await expect
        .poll(
          () =>
            thumbs.evaluateAll((images) => images.map((i) => (i as HTMLImageElement).naturalWidth)),
          { timeout: 10_000 },
        )
        .toEqual([160, 80]);
    } finally {
      await tab.close();
    }
  });

  it("the dashboard links the fleet page", async () => {
    const html = await (await fetch(urls.a)).text();
    expect(html).toContain('<a href="/_fleet/">Fleet</a>');
  });
});
