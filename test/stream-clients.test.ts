import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import sharp from "sharp";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ThingServer } from "../src/index.js";
import { withChromium } from "./support/chromium.js";
import { killAll, startProcess } from "./support/cli-process.js";
import { microscopeEntries } from "./support/microscope.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

/** Upper bound for any single wait on a child process, the browser or the network. */
const WAIT_MS = 20_000;
const WIDTH = 320;
const HEIGHT = 240;
const CLOSING_DELIMITER = "--frame--\r\n";
const RESULTS = fileURLToPath(new URL("../test-results/", import.meta.url));

/**
 * Check `condition` every 20 ms until it holds, for state that announces no event (a file
 * another process writes). Rejects after `ms`.
 */
async function until(condition: () => Promise<boolean>, what: string, ms = WAIT_MS) {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Start a tool; `finished` resolves when it has exited and its output is read. */
const run = (command: string, args: string[]) => startProcess(command, args);

let server: ThingServer;
let url: string;
let scratch: string;

beforeEach(async () => {
  server = new ThingServer(
    microscopeEntries({ camera: { width: WIDTH, height: HEIGHT, fps: 15 } }),
    { port: 0 },
  );
  url = await server.start();
  scratch = await tempDir("labthings-stream-clients-");
});

afterEach(async () => {
  await killAll();
  await within(server.close(), "server.close()");
  await removeTempDirs();
});

describe("ffmpeg (mpjpeg demuxer)", () => {
  it("decodes 30 frames of /camera/stream and exits 0", async () => {
    const ffmpeg = run("ffmpeg", [
      "-nostdin",
      "-loglevel",
      "error",
      "-i",
      `${url}/camera/stream`,
      "-frames:v",
      "30",
      "-f",
      "null",
      "-",
    ]);
    const result = await within(ffmpeg.finished, "ffmpeg to decode 30 frames");
    expect(result, result.stderr).toMatchObject({ code: 0, signal: null });
  });

  it("ffprobe identifies the stream as mpjpeg", async () => {
    const ffprobe = run("ffprobe", [
      "-v",
      "error",
      "-show_entries",
      "format=format_name",
      `${url}/camera/stream`,
    ]);
    const result = await within(ffprobe.finished, "ffprobe to probe the stream");
    expect(result, result.stderr).toMatchObject({ code: 0, signal: null });
    expect(result.stdout.split(/\r?\n/)).toContain("format_name=mpjpeg");
  });
});

describe("headless Chromium <img>", () => {
  const withBrowser = (use: (browser: Browser) => Promise<void>) =>
    withChromium(use, ["--disable-quic"]);

  /** Mean absolute difference of two same-sized images, 0–255, over all channels. */
  async function meanDifference(a: Buffer, b: Buffer): Promise<number> {
    const [left, right] = await Promise.all(
      [a, b].map((png) => sharp(png).removeAlpha().raw().toBuffer()),
    );
    expect(left!.length).toBe(right!.length);
    let sum = 0;
    for (let i = 0; i < left!.length; i++) sum += Math.abs(left![i]! - right![i]!);
    return sum / left!.length;
  }

  it.each([
    { mode: "advance headers", query: "?advance_headers=1", file: "stream-in-chromium.png" },
    { mode: "standard parts", query: "", file: "stream-in-chromium-standard.png" },
  ])(
    "shows the stream ($mode) and keeps the last frame after server.close()",
    async ({ query, file }) => {
      await withBrowser(async (browser) => {
        const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
        const streamUrl = `${url}/camera/stream${query}`;
        await page.setContent(
          `<!doctype html><body style="margin:0;background:#fff"><img id=v src="${streamUrl}"></body>`,
        );
        const image = page.locator("#v");
        const fetchFromPage = (target: string) =>
          page.evaluate(
            (href) =>
              fetch(href, { mode: "no-cors", cache: "no-store" }).then(
                () => "connected",
                () => "refused",
              ),
            target,
          );
        await page.waitForFunction(
          () => (document.getElementById("v") as HTMLImageElement).naturalWidth > 0,
          null,
          { timeout: WAIT_MS },
        );
        expect(await image.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(WIDTH);
        const before = await image.screenshot({ timeout: WAIT_MS });
        // The page can reach the server (so a failed request later means a closed listener).
        expect(await fetchFromPage(`${url}/camera/stream/snapshot`)).toBe("connected");

        const report = await within(server.close(), "server.close()");
        expect(report).toMatchObject({ responsesEnded: 1, responsesDestroyed: [], forced: false });
        // Let Chromium's network stack catch up with the end of the stream: a request it
        // starts now fails (the listener is closed), and its failure comes after the stream's
        // end; then two animation frames so the page has painted whatever that end did.
        expect(await fetchFromPage(`${url}/camera/stream/snapshot`)).toBe("refused");
        await page.evaluate(
          () =>
            new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
        );

        const after = await image.evaluate((img: HTMLImageElement) => ({
          naturalWidth: img.naturalWidth,
          naturalHeight: img.naturalHeight,
          width: img.getBoundingClientRect().width,
          height: img.getBoundingClientRect().height,
        }));
        expect(after).toEqual({
          naturalWidth: WIDTH,
          naturalHeight: HEIGHT,
          width: WIDTH,
          height: HEIGHT,
        });
        const shot = await image.screenshot({ timeout: WAIT_MS });
        await mkdir(RESULTS, { recursive: true });
        await sharp(shot).toFile(join(RESULTS, file));

        const { width, height } = await sharp(shot).metadata();
        expect({ width, height }).toEqual({ width: WIDTH, height: HEIGHT });
        // Content, not a blank box or a broken-image icon: the specimen has texture in
        // every channel, and the picture is the one shown while the stream ran (the
        // simulated view is the same every frame while the stage stands still).
        const stats = await sharp(shot).stats();
        for (const channel of stats.channels.slice(0, 3)) {
          expect(channel.stdev).toBeGreaterThan(8);
          expect(channel.max - channel.min).toBeGreaterThan(64);
        }
        expect(await meanDifference(before, shot)).toBeLessThan(2);
      });
    },
  );
});

describe("curl", () => {
  it("exits 0 (not 18) when the server closes, and the body ends with the closing delimiter", async () => {
    const file = join(scratch, "stream.mjpeg");
    const curl = run("curl", ["-sN", `${url}/camera/stream`, "-o", file]);
    const head = `--frame\r\nContent-Type: image/jpeg\r\nContent-Length: `;
    // A whole first part has arrived: headers, then at least Content-Length bytes.
    await until(async () => {
      const size = await stat(file).then(
        (s) => s.size,
        () => 0,
      );
      if (size < 200) return false;
      const text = (await readFile(file)).toString("latin1");
      const length = Number(/Content-Length: (\d+)\r\n/.exec(text)?.[1]);
      const body = text.indexOf("\r\n\r\n");
      return length > 0 && body > 0 && size >= body + 4 + length + 2;
    }, "curl to receive a first frame");
    expect(curl.child.exitCode).toBeNull();

    const report = await within(server.close(), "server.close()");
    expect(report).toMatchObject({ responsesEnded: 1, responsesDestroyed: [], forced: false });
    const result = await within(curl.finished, "curl to exit");
    expect(result, result.stderr).toMatchObject({ code: 0, signal: null });

    const body = (await readFile(file)).toString("latin1");
    expect(body.startsWith(head)).toBe(true);
    expect(body.endsWith(`\r\n${CLOSING_DELIMITER}`)).toBe(true);
    expect(body.indexOf(CLOSING_DELIMITER)).toBe(body.length - CLOSING_DELIMITER.length);
  });
});
