/**
 * The dashboard against a hostile Thing Description, in headless Chromium. A second local
 * server (node:http, the "attacker", recording every request) serves TDs whose forms and
 * links point at the microscope server that serves the page, whose read forms say POST,
 * whose base is the microscope's, and a `javascript:` link. A lab user is sent to
 * `<microscope>/?td=<attacker TD>`, with and without a token for the microscope in the
 * tab. The page must talk only to the TD's own origin, use only GET for reads and
 * observation, send nothing but those reads on load, never attach the microscope's token
 * to anything the TD leads to, and show what it refused and why.
 *
 * Then roles: with a viewer's token the page shows the microscope and every value, and no
 * control a viewer cannot use; an operator's token shows them all.
 *
 * Needs `dist/` built (`npm test` builds first).
 */
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import { launchChromium } from "./support/chromium.js";
import { within } from "./support/within.js";

const BUILT_DASHBOARD = fileURLToPath(new URL("../dist/src/dashboard/main.js", import.meta.url));
const PAGE_WAIT_MS = 20_000;
const OPERATOR = "policy-operator-token-0123456789";
const VIEWER = "policy-viewer-token-0123456789ab";
/** How long the page is watched after it has settled, for requests sent late. */
const QUIET_MS = 1500;

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
}

/** The attacker's server: TDs aimed at `victim`, and a record of every request. */
class HostileServer {
  readonly seen: Seen[] = [];
  #server: Server | undefined;
  base = "";

  async start(victim: () => string): Promise<void> {
    this.#server = createServer((request, response) => this.#answer(request, response, victim()));
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address() as { port: number };
    this.base = `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  #answer(request: IncomingMessage, response: import("node:http").ServerResponse, victim: string) {
    this.seen.push({
      method: request.method ?? "",
      url: request.url ?? "",
      authorization: request.headers.authorization,
    });
    const cors = {
      "access-control-allow-origin": "*",
      "access-control-allow-headers": "*",
      "access-control-allow-methods": "*",
    };
    if (request.method === "OPTIONS") {
      response.writeHead(204, cors).end();
      return;
    }
    const json = (value: unknown) =>
      response
        .writeHead(200, { ...cors, "content-type": "application/json" })
        .end(JSON.stringify(value));
    const path = (request.url ?? "").split("?")[0];
    if (path === "/evil/") return json(this.#evil(victim));
    if (path === "/based/") return json(this.#based(victim));
    if (path === "/evil/own" && request.method === "GET") return json(42);
    response.writeHead(404, cors).end();
  }

  /** Forms and links at the victim, reads that POST, a javascript: link, one honest read. */
  #evil(victim: string) {
    return {
      "@context": "https://www.w3.org/2022/wot/td/v1.1",
      title: "Friendly lamp",
      securityDefinitions: { nosec: { scheme: "nosec" } },
      security: ["nosec"],
      properties: {
        own: { type: "number", forms: [{ href: "own", op: ["readproperty"] }] },
        exposure: {
          type: "number",
          observable: true,
          forms: [
            {
              href: `${victim}/camera/exposureTime`,
              op: ["readproperty", "writeproperty", "observeproperty"],
            },
          ],
        },
        sneaky: {
          type: "number",
          readOnly: true,
          forms: [{ href: "sneaky", op: ["readproperty"], "htv:methodName": "POST" }],
        },
      },
      actions: {
        capture: { forms: [{ href: `${victim}/camera/capture`, op: ["invokeaction"] }] },
      },
      forms: [
        {
          href: `${victim}/camera/capture`,
          op: ["readallproperties"],
          "htv:methodName": "POST",
        },
        { href: "all", op: ["readallproperties"], "htv:methodName": "POST" },
        {
          href: `${victim}/stage/properties`,
          op: ["observeallproperties"],
          subprotocol: "sse",
        },
      ],
      links: [
        { href: `${victim}/camera/stream`, rel: "alternate", type: "multipart/x-mixed-replace" },
        { href: "javascript:alert(1)", rel: "alternate", type: "multipart/x-mixed-replace" },
      ],
    };
  }

  /** Relative forms, and a base that is the victim's: every form resolves there. */
  #based(victim: string) {
    return {
      title: "Based elsewhere",
      base: `${victim}/stage/`,
      properties: { speed: { type: "number", forms: [{ href: "speed" }] } },
      actions: { moveRelative: { forms: [{ href: "moveRelative" }] } },
      forms: [{ href: "properties", op: ["readallproperties"] }],
    };
  }
}

describe("the dashboard with a hostile Thing Description", () => {
  const hostile = new HostileServer();
  let open: ThingServer;
  let openBase: string;
  let secured: ThingServer;
  let securedBase: string;
  let browser: Browser;
  /** Requests each microscope server received. */
  const received = new Map<string, Seen[]>();

  const microscope = (
    options: { authToken?: string; authTokens?: { token: string; role: "viewer" }[] } = {},
  ) =>
    new ThingServer(
      [
        { name: "stage", thing: new SimulatedStage() },
        { name: "camera", thing: new SimulatedCamera({ width: 64, height: 48, fps: 10 }) },
      ],
      { port: 0, ...options },
    );

  beforeAll(async () => {
    if (!existsSync(BUILT_DASHBOARD))
      throw new Error(`run 'npm run build' first: ${BUILT_DASHBOARD}`);
    open = microscope();
    secured = microscope({ authToken: OPERATOR, authTokens: [{ token: VIEWER, role: "viewer" }] });
    [openBase, securedBase, browser] = await Promise.all([
      open.start(),
      secured.start(),
      launchChromium(),
    ]);
    for (const [server, base] of [
      [open, openBase],
      [secured, securedBase],
    ] as const) {
      const log: Seen[] = [];
      received.set(base, log);
      server.app.server.on("request", (request: IncomingMessage) =>
        log.push({
          method: request.method ?? "",
          url: request.url ?? "",
          authorization: request.headers.authorization,
        }),
      );
    }
    // The hostile TDs aim at whichever microscope the current test uses.
    await hostile.start(() => victim);
  });

  let victim = "";

  afterAll(async () => {
    await browser?.close();
    await Promise.all([
      hostile.close(),
      open && within(open.close(), "a server to close"),
      secured && within(secured.close(), "a server to close"),
    ]);
  });

  /** Open the page the attacker links to; returns every request the page made. */
  async function visit(
    page: Page,
    base: string,
  ): Promise<{ method: string; url: string; headers: Record<string, string> }[]> {
    const requests: { method: string; url: string; headers: Record<string, string> }[] = [];
    page.on("request", (request) =>
      requests.push({ method: request.method(), url: request.url(), headers: request.headers() }),
    );
    const td = (path: string) => encodeURIComponent(`${hostile.base}${path}`);
    await page.goto(`${base}/?td=${td("/evil/")}&td=${td("/based/")}`);
    // Settled: the honest read has shown its value and both panels say what they refused.
    await expect
      .poll(() => page.locator('[data-thing="evil"] [data-property="own"] output').textContent(), {
        timeout: PAGE_WAIT_MS,
      })
      .toBe("42");
    await page.locator('[data-thing="based"] .refusals').waitFor({ timeout: PAGE_WAIT_MS });
    await page.waitForTimeout(QUIET_MS);
    return requests;
  }

  async function expectNothingReachedTheMicroscope(base: string, server: ThingServer) {
    const fromPage = received
      .get(base)!
      .filter((r) => !r.url.startsWith("/_dashboard/") && r.url.split("?")[0] !== "/");
    expect(fromPage).toEqual([]);
    expect(server.invocations.list()).toEqual([]);
  }

  async function expectRefusalsShown(page: Page, base: string) {
    const evil = page.locator('[data-thing="evil"] .refusals');
    const text = (await evil.textContent()) ?? "";
    expect(text).toContain(
      `leads to ${base}, not to ${hostile.base} where this Thing Description came from`,
    );
    expect(text).toContain("readallproperties must only read, but this form says POST");
    expect(text).toContain("readproperty must only read, but this form says POST");
    expect(text).toContain("it is a javascript: link, not http(s)");
    expect(await page.locator('[data-thing="evil"] [data-refused="actions.capture"]').count()).toBe(
      1,
    );
    // Refused actions and writes offer no control.
    expect(await page.locator('[data-thing="evil"] [data-action="capture"] button').count()).toBe(
      0,
    );
    expect(await page.locator('[data-thing="evil"] [data-property="exposure"] form').count()).toBe(
      0,
    );
    expect(await page.locator('[data-thing="evil"] img').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:"]').count()).toBe(0);
    const based = (await page.locator('[data-thing="based"] .refusals').textContent()) ?? "";
    expect(based).toContain(`leads to ${base}`);
  }

  it("without a token: only the TD's own origin, only GET, nothing reaches the microscope", async () => {
    victim = openBase;
    hostile.seen.length = 0;
    const page = await browser.newPage();
    try {
      const requests = await visit(page, openBase);
      expect(requests.filter((r) => !["GET", "OPTIONS"].includes(r.method))).toEqual([]);
      for (const request of requests) {
        const origin = new URL(request.url).origin;
        expect([openBase, hostile.base, "null"], request.url).toContain(
          origin === "null" ? "null" : origin,
        );
      }
      await expectNothingReachedTheMicroscope(openBase, open);
      // The attacker's own POST-for-a-read never arrived either.
      expect(hostile.seen.filter((r) => r.method !== "GET")).toEqual([]);
      expect(hostile.seen.map((r) => r.url)).toEqual(
        expect.arrayContaining(["/evil/", "/based/", "/evil/own"]),
      );
      await expectRefusalsShown(page, openBase);
    } finally {
      await page.close();
    }
  });

  it("with the microscope's token in the tab: it is never attached, nothing reaches the microscope", async () => {
    victim = securedBase;
    hostile.seen.length = 0;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // The lab user has used the microscope in this tab: its token is in sessionStorage.
      await page.goto(`${securedBase}/#token=${OPERATOR}`);
      await expect
        .poll(
          () => page.locator('[data-thing="stage"] [data-property="speed"] output').textContent(),
          {
            timeout: PAGE_WAIT_MS,
          },
        )
        .toBe("2000 steps/s");
      received.get(securedBase)!.length = 0;
      const requests = await visit(page, securedBase);
      expect(requests.filter((r) => !["GET", "OPTIONS"].includes(r.method))).toEqual([]);
      for (const request of requests) {
        expect(request.headers.authorization, request.url).toBeUndefined();
        expect(request.url).not.toContain(OPERATOR);
      }
      expect(hostile.seen.filter((r) => r.authorization !== undefined)).toEqual([]);
      await expectNothingReachedTheMicroscope(securedBase, secured);
      await expectRefusalsShown(page, securedBase);
    } finally {
      await context.close();
    }
  });

  it("a viewer's token: the microscope and every value, and no control that changes anything", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const unsafe: string[] = [];
      page.on("request", (request) => {
        if (!["GET", "HEAD", "OPTIONS"].includes(request.method())) unsafe.push(request.url());
      });
      await page.goto(`${securedBase}/#token=${VIEWER}`);
      const speed = page.locator('[data-thing="stage"] [data-property="speed"]');
      await expect
        .poll(() => speed.locator("output").textContent(), { timeout: PAGE_WAIT_MS })
        .toBe("2000 steps/s");
      await page.waitForFunction(
        () =>
          (document.querySelector("img.microscope-image") as HTMLImageElement | null)
            ?.naturalWidth === 64,
        undefined,
        { timeout: PAGE_WAIT_MS },
      );
      expect(await page.locator("[data-property] form").count()).toBe(0);
      expect(await page.locator("[data-action] form").count()).toBe(0);
      expect((await speed.locator(".hint").allTextContents()).join(" ")).toContain(
        "view only: this token has the viewer role",
      );
      const view = page.locator("#microscope-view");
      expect(await view.getByRole("button").count()).toBe(0);
      expect(await view.locator(".hint").first().textContent()).toContain("View only");
      // A click on the live view moves nothing.
      await view.locator("img.microscope-image").click();
      await page.waitForTimeout(500);
      expect(unsafe).toEqual([]);
      expect(secured.invocations.list()).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("an operator's token shows every control", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${securedBase}/#token=${OPERATOR}`);
      const speed = page.locator('[data-thing="stage"] [data-property="speed"]');
      await expect
        .poll(() => speed.locator("output").textContent(), { timeout: PAGE_WAIT_MS })
        .toBe("2000 steps/s");
      expect(await speed.locator("form").count()).toBe(1);
      expect(
        await page.locator('[data-thing="stage"] [data-action="moveRelative"] form').count(),
      ).toBe(1);
      const view = page.locator("#microscope-view");
      await expect(
        view.getByRole("button", { name: "Capture", exact: true }).isVisible(),
      ).resolves.toBe(true);
    } finally {
      await context.close();
    }
  });
});
