/**
 * The dashboard at `GET /` in headless Chromium against real servers: the simulated
 * microscope (live view, click-to-move, keyboard moves, autofocus, capture, property
 * edits with validation, cancelling a long move), another server's Thing through `?td=`
 * (CORS, a rule only the server checks, an action form of every input kind, events,
 * a stream), and a server that wants a bearer token (the page asks for it, or takes
 * `#token=`). Screenshots go to `test-results/` (kept by CI).
 *
 * Needs `dist/` built (`npm test` builds first; run `npm run build` before this file
 * alone): the page loads the compiled dashboard and client modules.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Locator, Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ActionStatus, ThingServer } from "../src/index.js";
import { launchChromium } from "./support/chromium.js";
import { Lamp } from "./support/dashboard-things.js";
import { getJson, putJson } from "./support/json-http.js";
import { microscopeEntries } from "./support/microscope.js";
import { rawGet } from "./support/raw-http.js";
import { serveDuringSuite } from "./support/suite-server.js";
import { within } from "./support/within.js";

const RESULTS = fileURLToPath(new URL("../test-results/", import.meta.url));
const BUILT_DASHBOARD = fileURLToPath(new URL("../dist/src/dashboard/main.js", import.meta.url));
/** Upper bound for one wait in the page (the machine may be loaded). */
const PAGE_WAIT_MS = 20_000;
const WIDTH = 320;
const HEIGHT = 240;
/** The camera's default: stage steps per image pixel. */
const STEPS_PER_PIXEL = 10;
const TOKEN = "dashboard-test-token-0123456789";

interface Position {
  x: number;
  y: number;
  z: number;
}

/** Poll `read` until `accept` holds (state another process changes; no event to await). */
async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  what: string,
): Promise<T> {
  const deadline = performance.now() + PAGE_WAIT_MS;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Wait until an `<img>` has decoded a picture (a stream's first frame, a blob). */
async function imageRendered(image: Locator): Promise<number> {
  await image.waitFor({ timeout: PAGE_WAIT_MS });
  const handle = await image.elementHandle();
  await image.page().waitForFunction((img) => (img as HTMLImageElement).naturalWidth > 0, handle, {
    timeout: PAGE_WAIT_MS,
  });
  return image.evaluate((img) => (img as HTMLImageElement).naturalWidth);
}

/** The live view is wholly inside the window (not scrolled away, not covered by a dialog). */
function liveViewInSight(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const image = document.querySelector("img.microscope-image")!.getBoundingClientRect();
    return image.height > 0 && image.top >= 0 && image.bottom <= window.innerHeight;
  });
}

/** Every control without a label and every button without a name, as HTML (none expected). */
function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const missing: string[] = [];
    for (const control of Array.from(document.querySelectorAll("input, select, textarea"))) {
      const labelled =
        ((control as HTMLInputElement).labels?.length ?? 0) > 0 ||
        control.hasAttribute("aria-label") ||
        control.hasAttribute("aria-labelledby");
      if (!labelled) missing.push(control.outerHTML);
    }
    for (const button of Array.from(document.querySelectorAll("button"))) {
      if (!button.textContent?.trim() && !button.hasAttribute("aria-label"))
        missing.push(button.outerHTML);
    }
    return missing;
  });
}

describe("the dashboard in Chromium", () => {
  let microscope: ThingServer;
  let base: string;
  let other: ThingServer;
  let otherBase: string;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const writes: string[] = [];

  const position = () => getJson<Position>(`${base}/stage/position`);
  const view = () => page.locator("#microscope-view");
  const stagePanel = () => page.locator('[data-thing="stage"]');

  beforeAll(async () => {
    if (!existsSync(BUILT_DASHBOARD))
      throw new Error(`run 'npm run build' first: ${BUILT_DASHBOARD} is missing`);
    await mkdir(RESULTS, { recursive: true });
    microscope = new ThingServer(
      microscopeEntries({ camera: { width: WIDTH, height: HEIGHT, fps: 15 }, autofocus: true }),
      { port: 0 },
    );
    // Under an API prefix, as behind a reverse proxy: the page and its modules follow it.
    other = new ThingServer([{ name: "lamp", thing: new Lamp() }], {
      port: 0,
      cors: true,
      apiPrefix: "/lab",
    });
    [base, otherBase, browser] = await Promise.all([
      microscope.start(),
      other.start(),
      launchChromium(),
    ]);
    expect((await putJson(`${base}/stage/speed`, 20_000)).status).toBe(204);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("request", (request) => {
      if (request.method() !== "GET") writes.push(`${request.method()} ${request.url()}`);
    });
    await page.goto(`${base}/`);
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all([
      microscope && within(microscope.close(), "the microscope server to close"),
      other && within(other.close(), "the other server to close"),
    ]);
  });

  it("serves the page and its modules from an allowlist, with types, validators and a CSP", async () => {
    const shell = await fetch(`${base}/`);
    expect(shell.status).toBe(200);
    expect(shell.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(shell.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await shell.text()).toContain('src="/_dashboard/dashboard/main.js"');

    for (const path of ["dashboard/main.js", "client/thing-client.js"]) {
      const module = await fetch(`${base}/_dashboard/${path}`);
      expect(module.status, path).toBe(200);
      expect(module.headers.get("content-type"), path).toBe("text/javascript; charset=utf-8");
      expect(module.headers.get("cache-control"), path).toBe("no-cache");
      const etag = module.headers.get("etag")!;
      const again = await fetch(`${base}/_dashboard/${path}`, {
        headers: { "if-none-match": etag },
      });
      expect(again.status, path).toBe(304);
    }
    const css = await fetch(`${base}/_dashboard/dashboard.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    // Only compiled modules of the two folders: no declarations, maps, or paths out of them.
    for (const path of [
      "dashboard/main.d.ts",
      "dashboard/main.js.map",
      "dashboard/../../package.json",
      "dashboard/%2e%2e/%2e%2e/package.json",
      "client/..%2f..%2fhttp%2fthing-server.js",
      "http/thing-server.js",
    ]) {
      // Sent byte for byte: fetch would normalise the dots away.
      const refused = await rawGet(base, `/_dashboard/${path}`);
      expect(refused.status, path).toBe(404);
      expect(refused.body.toString(), path).toContain("the dashboard has no file");
    }
    const post = await fetch(`${base}/_dashboard/dashboard/main.js`, { method: "POST" });
    expect(post.status).toBe(405);

    const prefixed = await fetch(`${otherBase}/`);
    expect(await prefixed.text()).toContain('src="/lab/_dashboard/dashboard/main.js"');
  });

  it("lists the Things and shows the live view of the camera", async () => {
    const nav = page.locator("#thing-nav a");
    await expect
      .poll(() => nav.allTextContents(), { timeout: PAGE_WAIT_MS })
      .toEqual(["Microscope", "Simulated stage", "Simulated camera", "Autofocus"]);
    for (const name of ["stage", "camera", "autofocus"]) {
      await expect(page.locator(`[data-thing="${name}"] h2`).textContent()).resolves.toBeTruthy();
    }
    expect(await imageRendered(view().locator("img.microscope-image"))).toBe(WIDTH);
    // The stage position is live on the page.
    await expect
      .poll(() => view().locator('dd[data-axis="x"]').textContent(), { timeout: PAGE_WAIT_MS })
      .toBe("0");
  });

  it("groups each Thing's properties into readings and settings, with no Refresh for observed values", async () => {
    const camera = page.locator('[data-thing="camera"]');
    await expect
      .poll(() =>
        camera
          .locator('[data-group="readings"] [data-property]')
          .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-property"))),
      )
      .toEqual(["fieldOfView", "sensorTemperature"]);
    expect(
      await camera
        .locator('[data-group="settings"] [data-property]')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-property"))),
    ).toEqual(["exposureTime", "analogGain", "resolution", "frameRate", "colourGains"]);
    // Every read-only value of the microscope is observed: none needs a Refresh button.
    expect(await page.getByRole("button", { name: /^Refresh/ }).count()).toBe(0);
    await expect
      .poll(() => camera.locator('[data-property="fieldOfView"] output').textContent())
      .toBe("width 3200, height 2400");
    // Actions start folded: a title each.
    expect(await page.locator('[data-thing="stage"] details.action-form[open]').count()).toBe(0);
  });

  it("/docs is branded labthings-ts and loads /openapi.json", async () => {
    const docs = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      const fetched: string[] = [];
      docs.on("request", (request) => fetched.push(new URL(request.url()).pathname));
      await docs.goto(`${base}/docs`);
      await docs.locator(".opblock").first().waitFor({ timeout: PAGE_WAIT_MS });
      expect(await docs.title()).toBe("labthings-ts: API docs");
      expect(await docs.locator(".topbar select").inputValue()).toBe("/openapi.json");
      expect(await docs.locator(".topbar select option").first().textContent()).toBe(
        "labthings-ts: /openapi.json",
      );
      expect(fetched).toContain("/openapi.json");
      expect(fetched).not.toContain("/docs/json");
      await docs.screenshot({ path: join(RESULTS, "docs.png") });
    } finally {
      await docs.close();
    }
  });

  it("edits a writable property; an invalid value shows the rule it breaks and sends nothing", async () => {
    const exposure = page.locator('[data-thing="camera"] [data-property="exposureTime"]');
    const input = exposure.getByLabel("New value");
    await input.fill("20000");
    await exposure.getByRole("button", { name: "Set", exact: true }).click();
    await eventually(
      () => getJson<number>(`${base}/camera/exposureTime`),
      (v) => v === 20_000,
      "exposure 20000",
    );
    await expect
      .poll(() => exposure.locator("output").textContent(), { timeout: PAGE_WAIT_MS })
      .toBe("20000 µs");

    const writesBefore = writes.length;
    await input.fill("2000000");
    await exposure.getByRole("button", { name: "Set", exact: true }).click();
    await expect
      .poll(() => exposure.locator(".field-error").textContent())
      .toBe("must be at most 1000000");
    expect(await input.getAttribute("aria-invalid")).toBe("true");
    expect(await exposure.locator(".form-message").textContent()).toMatch(/^Not sent/);
    expect(writes.slice(writesBefore)).toEqual([]);
    expect(await getJson<number>(`${base}/camera/exposureTime`)).toBe(20_000);

    // An object-valued property: each member is its own labelled field.
    const resolution = page.locator('[data-thing="camera"] [data-property="resolution"]');
    await resolution.getByLabel("width").fill("101");
    await resolution.getByRole("button", { name: "Set", exact: true }).click();
    await expect
      .poll(() => resolution.locator(".field-error").first().textContent())
      .toBe("must be a multiple of 2");
    expect(writes.slice(writesBefore)).toEqual([]);
    expect(await getJson(`${base}/camera/resolution`)).toEqual({ width: WIDTH, height: HEIGHT });
    // Back to the default exposure, so the screenshots show a well-exposed specimen.
    expect((await putJson(`${base}/camera/exposureTime`, 10_000)).status).toBe(204);
  });

  it("a click on the image moves the stage so that the point comes to the centre", async () => {
    const start = await position();
    const image = view().locator("img.microscope-image");
    const box = (await image.boundingBox())!;
    // (Playwright scrolls the image into view and clicks at this point of it.)
    await image.click({ position: { x: box.width * 0.75, y: box.height * 0.25 } });
    // A quarter of the view right and up: the field of view is 320×240 px × 10 steps.
    const expected = {
      x: start.x + 0.25 * WIDTH * STEPS_PER_PIXEL,
      y: start.y - 0.25 * HEIGHT * STEPS_PER_PIXEL,
    };
    const tolerance = 2 * STEPS_PER_PIXEL * (WIDTH / box.width) + 1;
    await eventually(
      position,
      (p) =>
        Math.abs(p.x - expected.x) <= tolerance &&
        Math.abs(p.y - expected.y) <= tolerance &&
        p.z === start.z,
      `the stage at about ${JSON.stringify(expected)}`,
    );
    await expect
      .poll(() => view().locator(".move-area .invocation").getAttribute("data-status"), {
        timeout: PAGE_WAIT_MS,
      })
      .toBe("completed");
    const moved = await position();
    await expect
      .poll(() => view().locator('dd[data-axis="x"]').textContent(), { timeout: PAGE_WAIT_MS })
      .toBe(String(moved.x));
  });

  it("the live view moves the stage from the keyboard: arrows by a quarter view, Page Up focuses", async () => {
    const start = await position();
    await view().locator(".view-surface").focus();
    await page.keyboard.press("ArrowRight");
    await eventually(
      position,
      (p) => p.x === start.x + 0.25 * WIDTH * STEPS_PER_PIXEL,
      "a quarter view right",
    );
    await page.keyboard.press("PageUp");
    await eventually(position, (p) => p.z === start.z + 100, "one focus step up");
  });

  it("autofocus from the microscope view: progress reaches 100 % and z moves to the focus", async () => {
    const startZ = (await position()).z;
    await view().getByRole("button", { name: "Autofocus", exact: true }).click();
    const invocation = view().locator('[data-role="autofocus"] .invocation');
    await expect
      .poll(() => invocation.getAttribute("data-status"), { timeout: 60_000, interval: 100 })
      .toBe("completed");
    expect(await invocation.locator(".percent").textContent()).toBe("100 %");
    expect(
      await invocation.locator("progress").evaluate((p) => (p as HTMLProgressElement).value),
    ).toBe(1);
    expect(await invocation.locator(".log li").count()).toBeGreaterThan(0);
    const focused = await position();
    expect(focused.z).not.toBe(startZ);
    expect(Math.abs(focused.z - 1000)).toBeLessThanOrEqual(100); // the camera's focal plane
    // Finished: one line that says the result once; the sweep's log is one click away.
    expect(await invocation.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await invocation.locator("summary").textContent()).toBe(
      `Autofocus done — in focus at z=${focused.z}`,
    );
    expect(await invocation.locator(".output-area").textContent()).toBe("");
    await expect
      .poll(() => view().locator('dd[data-axis="z"]').textContent(), { timeout: PAGE_WAIT_MS })
      .toBe(String(focused.z));
  });

  it("capture adds the JPEG to the gallery (thumbnail, full size, download); the live view stays in sight", async () => {
    await view().getByRole("button", { name: "Capture", exact: true }).click();
    const thumbnail = view().locator('[data-role="gallery"] li img').first();
    expect(await imageRendered(thumbnail)).toBe(WIDTH);
    const capture = view().locator('[data-role="capture"] .invocation');
    await expect.poll(() => capture.getAttribute("data-status")).toBe("completed");
    expect(await capture.locator("summary").textContent()).toMatch(
      /^Capture done — capture-[0-9a-f]{8}\.jpg \(\d+\.\d kB\)$/,
    );
    expect(await liveViewInSight(page)).toBe(true);

    const link = view().locator('[data-role="gallery"] li a.download').first();
    expect(await link.getAttribute("download")).toMatch(/^capture-.*\.jpg$/);
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const bytes = await readFile((await download.path())!);
    const metadata = await sharp(bytes).metadata();
    expect([metadata.format, metadata.width, metadata.height]).toEqual(["jpeg", WIDTH, HEIGHT]);

    await view().locator('[data-role="gallery"] .gallery-thumb').first().click();
    const dialog = view().locator("dialog.gallery-dialog");
    expect(await imageRendered(dialog.locator("img.gallery-full"))).toBe(WIDTH);
    expect(await dialog.evaluate((d) => (d as HTMLDialogElement).open)).toBe(true);
    await dialog.getByRole("button", { name: "Close" }).click();
    expect(await dialog.evaluate((d) => (d as HTMLDialogElement).open)).toBe(false);
  });

  it("the jog pad moves by the chosen step preset; the scale bar comes from the field of view", async () => {
    const start = await position();
    const pad = view().getByRole("group", { name: "Jog the stage" });
    await view().getByLabel("Fine").check();
    await pad.getByRole("button", { name: "Move right (+x)" }).click();
    // Fine: a twentieth of the view (320 px × 10 steps).
    await eventually(position, (p) => p.x === start.x + (WIDTH * STEPS_PER_PIXEL) / 20, "x + 160");
    await view().getByLabel("10", { exact: true }).check();
    await pad.getByRole("button", { name: "Focus down (−z)" }).click();
    await eventually(position, (p) => p.z === start.z - 10, "z − 10");
    await view().getByLabel("¼ view").check();
    await view().getByLabel("100", { exact: true }).check();

    // 3200 steps wide: the bar is the round 500 steps, 500/3200 of the image.
    const bar = view().locator('[data-role="scale-bar"]');
    expect(await bar.textContent()).toBe("500 steps");
    const [line, image] = await Promise.all([
      bar.locator(".scale-bar-line").boundingBox(),
      view().locator("img.microscope-image").boundingBox(),
    ]);
    expect(line!.width / image!.width).toBeCloseTo(500 / 3200, 1);
  });

  it("a finished move collapses to one line that says where the stage is, once", async () => {
    const move = view().locator(".move-area .invocation");
    await expect.poll(() => move.getAttribute("data-status")).toBe("completed");
    expect(await move.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    const { x, y, z } = await position();
    expect(await move.locator("summary").textContent()).toBe(
      `Move done — at x ${x}, y ${y}, z ${z}`,
    );
    // The progress message (the same place in other words) is inside, not in the line.
    expect(await move.locator(".progress-message").isVisible()).toBe(false);
  });

  it("saves screenshots; controls are labelled; a narrow screen needs no sideways scrolling", async () => {
    expect(await unlabelledControls(page)).toEqual([]);
    const screenshot = join(RESULTS, "dashboard.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    expect((await stat(screenshot)).size).toBeGreaterThan(10_000);

    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 800 });
      try {
        await page.evaluate(() => window.scrollTo(0, 0));
        const overflow = await page.evaluate(
          () => document.documentElement.scrollWidth - window.innerWidth,
        );
        expect(overflow, `sideways scrolling at ${width} px`).toBeLessThanOrEqual(0);
        // Capture from wherever the button is (below the view on a phone): the live view
        // must still be in sight afterwards.
        const captures = await view().locator('[data-role="gallery"] li').count();
        await view().getByRole("button", { name: "Capture", exact: true }).click();
        await expect
          .poll(() => view().locator('[data-role="gallery"] li').count(), {
            timeout: PAGE_WAIT_MS,
          })
          .toBe(captures + 1);
        expect(await liveViewInSight(page), `the live view after a capture at ${width}×800`).toBe(
          true,
        );
        await page.screenshot({ path: join(RESULTS, `dashboard-${width}x800-after-capture.png`) });
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }
    }
  });

  it("a long move is cancelled from the page: the server reports it cancelled", async () => {
    expect((await putJson(`${base}/stage/speed`, 1000)).status).toBe(204);
    const start = await position();
    const target = start.x > 0 ? start.x - 8000 : start.x + 8000; // 8 s at 1000 steps/s
    const move = stagePanel().locator('[data-action="moveAbsolute"]');
    await move.locator("summary").first().click(); // actions start folded
    await move.getByLabel("x", { exact: true }).fill(String(target));
    await move.getByRole("button", { name: "Move absolute", exact: true }).click();
    const invocation = move.locator(".invocation").first();
    await expect
      .poll(() => invocation.getAttribute("data-status"), { timeout: PAGE_WAIT_MS })
      .toBe("running");
    await eventually(position, (p) => Math.abs(p.x - start.x) >= 100, "the stage to be on its way");
    await invocation.getByRole("button", { name: "Cancel" }).click();
    await expect
      .poll(() => invocation.getAttribute("data-status"), { timeout: PAGE_WAIT_MS })
      .toBe("cancelled");

    const [latest] = await getJson<ActionStatus[]>(`${base}/stage/moveAbsolute`);
    expect(latest!.status).toBe("cancelled");
    const stopped = await position();
    expect(Math.abs(stopped.x - start.x)).toBeGreaterThan(0);
    expect(Math.abs(stopped.x - start.x)).toBeLessThan(8000);
    expect(pageErrors).toEqual([]);
  });

  describe("another server's Thing through ?td=", () => {
    let lampPage: Page;
    const lampWrites: string[] = [];
    const lamp = () => lampPage.locator('[data-thing="lamp"]');

    beforeAll(async () => {
      lampPage = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      lampPage.on("pageerror", (error) => pageErrors.push(error.message));
      lampPage.on("request", (request) => {
        if (!["GET", "OPTIONS"].includes(request.method()))
          lampWrites.push(`${request.method()} ${request.url()}`);
      });
      await lampPage.goto(`${base}/?td=${encodeURIComponent(`${otherBase}/lamp/`)}`);
    });

    afterAll(() => lampPage?.close());

    it("the lamp's own server shows it too, under its API prefix", async () => {
      const own = await browser.newPage({ viewport: { width: 800, height: 700 } });
      try {
        own.on("pageerror", (error) => pageErrors.push(error.message));
        await own.goto(`${otherBase}/`);
        await expect
          .poll(() => own.locator("#thing-nav a").allTextContents(), { timeout: PAGE_WAIT_MS })
          .toEqual(["Lamp"]);
        expect(await imageRendered(own.locator('img[data-stream="card"]'))).toBe(160);
      } finally {
        await own.close();
      }
    });

    it("shows its properties live and its stream, and writes through CORS", async () => {
      const brightness = lamp().locator('[data-property="brightness"]');
      await expect
        .poll(() => brightness.locator("output").textContent(), { timeout: PAGE_WAIT_MS })
        .toBe("0.5");
      expect(await lampPage.locator("#microscope-view").count()).toBe(0);
      expect(await imageRendered(lamp().locator('img[data-stream="card"]'))).toBe(160);

      await brightness.getByLabel("New value").fill("0.7");
      await brightness.getByRole("button", { name: "Set", exact: true }).click();
      await eventually(
        () => getJson<number>(`${otherBase}/lamp/brightness`),
        (v) => v === 0.7,
        "brightness 0.7",
      );
      // A number that changed: a short history graph beside its value.
      const graph = brightness.locator("svg.history-graph");
      await expect.poll(() => graph.isVisible(), { timeout: PAGE_WAIT_MS }).toBe(true);
      expect(await graph.getAttribute("aria-label")).toBe(
        "Brightness: 0.5 to 0.7 over the last minute",
      );
      expect((await graph.locator("polyline").getAttribute("points"))!.split(" ")).toHaveLength(2);

      const colour = lamp().locator('[data-property="colour"]');
      await colour.getByLabel("New value").selectOption("red");
      await colour.getByRole("button", { name: "Set", exact: true }).click();
      await eventually(
        () => getJson<string>(`${otherBase}/lamp/colour`),
        (v) => v === "red",
        "colour red",
      );
      await expect
        .poll(() => colour.locator("output").textContent(), { timeout: PAGE_WAIT_MS })
        .toBe("red");
    });

    it("shows the server's 400 next to the field for a rule only the server checks", async () => {
      const contact = lamp().locator('[data-property="contact"]');
      const sent = lampWrites.length;
      await contact.getByLabel("New value").fill("not an address");
      await contact.getByRole("button", { name: "Set", exact: true }).click();
      await expect
        .poll(() => contact.locator(".field-error").textContent(), { timeout: PAGE_WAIT_MS })
        .toBe('must match format "email"');
      expect(await contact.locator(".form-message").textContent()).toMatch(
        /^Not saved: Bad Request: .*email/,
      );
      expect(lampWrites.slice(sent)).toEqual([`PUT ${otherBase}/lamp/contact`]);
      expect(await getJson<string>(`${otherBase}/lamp/contact`)).toBe("lab@example.org");
    });

    it("runs an action from a generated form: integer, enum and boolean inputs, progress, log, output, event", async () => {
      const blink = lamp().locator('[data-action="blink"]');
      await blink.locator("summary").first().click(); // actions start folded
      const sent = lampWrites.length;
      await blink.getByLabel("times").fill("11");
      await blink.getByRole("button", { name: "Blink", exact: true }).click();
      await expect
        .poll(() => blink.locator(".field-error").first().textContent())
        .toBe("must be at most 10");
      expect(lampWrites.slice(sent)).toEqual([]);

      await blink.getByLabel("times").fill("3");
      await blink.getByLabel("colour").selectOption("blue");
      await blink.getByLabel("fast").selectOption("true");
      await blink.getByRole("button", { name: "Blink", exact: true }).click();
      const invocation = blink.locator(".invocation").first();
      await expect
        .poll(() => invocation.getAttribute("data-status"), { timeout: PAGE_WAIT_MS })
        .toBe("completed");
      expect(await invocation.locator(".percent").textContent()).toBe("100 %");
      expect(await invocation.locator(".log li").allTextContents()).toEqual([
        expect.stringMatching(/info blink 1$/),
        expect.stringMatching(/info blink 2$/),
        expect.stringMatching(/info blink 3$/),
      ]);
      expect(JSON.parse((await invocation.locator("pre.output").textContent())!)).toEqual({
        blinked: 3,
        colour: "blue",
      });
      await expect
        .poll(() => lamp().locator('.events li[data-event="blinked"]').count(), {
          timeout: PAGE_WAIT_MS,
        })
        .toBe(1);
      expect(await lamp().locator(".events li").first().textContent()).toContain("Blinked");
    });
  });

  describe("a server that wants a bearer token", () => {
    const secured = serveDuringSuite(() => [{ name: "lamp", thing: new Lamp() }], {
      authToken: TOKEN,
    });

    it("asks for the token after a 401, keeps it for the tab and uses it for requests and the stream", async () => {
      const context = await browser.newContext();
      try {
        const tab = await context.newPage();
        await tab.goto(`${secured.base}/`);
        const prompt = tab.locator("#token-prompt");
        await prompt.getByLabel("Access token", { exact: true }).waitFor({ timeout: PAGE_WAIT_MS });
        await prompt.getByLabel("Access token", { exact: true }).fill(TOKEN);
        await Promise.all([
          tab.waitForEvent("load"),
          prompt.getByRole("button", { name: "Use token" }).click(),
        ]);
        const brightness = tab.locator('[data-thing="lamp"] [data-property="brightness"] output');
        await expect.poll(() => brightness.textContent(), { timeout: PAGE_WAIT_MS }).toBe("0.5");
        expect(await imageRendered(tab.locator('img[data-stream="card"]'))).toBe(160);
        expect(await tab.locator("#token-prompt").isHidden()).toBe(true);
      } finally {
        await context.close();
      }
    });

    it("takes #token= from the address and removes it from there", async () => {
      const context = await browser.newContext();
      try {
        const tab = await context.newPage();
        await tab.goto(`${secured.base}/#token=${TOKEN}`);
        const brightness = tab.locator('[data-thing="lamp"] [data-property="brightness"] output');
        await expect.poll(() => brightness.textContent(), { timeout: PAGE_WAIT_MS }).toBe("0.5");
        expect(await tab.evaluate(() => location.hash)).toBe("");
        expect(await tab.locator("#token-prompt").isHidden()).toBe(true);
      } finally {
        await context.close();
      }
    });
  });
});
