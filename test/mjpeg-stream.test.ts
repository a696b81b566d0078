/**
 * MJPEG streams end to end, against a real ThingServer on 127.0.0.1 and real sockets:
 * the wire format real clients need (ffmpeg/OpenCV, Chromium), latest-frame-wins fan-out
 * with slow and stalled clients, snapshots, client caps, the TD links, the shutdown that
 * ends every stream cleanly, and the simulated microscope camera.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import {
  type Frame,
  InvalidInputError,
  isJpeg,
  MjpegStream,
  type MjpegStreamOptions,
  mjpegStream,
  property,
  Thing,
  type ThingEntry,
  ThingServer,
  Type,
} from "../src/index.js";
import { microscopeEntries } from "./support/microscope.js";
import {
  connectMjpeg,
  EXPECTED_CACHE_CONTROL,
  type MjpegConnectOptions,
  type MjpegPart,
  type MjpegTestClient,
} from "./support/mjpeg-parser.js";
import { within } from "./support/within.js";

/** Upper bound for any single wait on the network or on the server. */
const WAIT_MS = 5000;

class TestCamera extends Thing {
  static override title = "Test camera";

  @mjpegStream({ title: "Test" })
  readonly stream: MjpegStream;

  @property({ schema: Type.Number({ minimum: 0 }), title: "Exposure" })
  accessor exposure = 10;

  constructor(options: MjpegStreamOptions = { resendAfterMs: 300, stallTimeoutMs: 1500 }) {
    super();
    this.stream = new MjpegStream(options);
  }
}

// ---------------------------------------------------------------- helpers

const servers: ThingServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function startServer(entries: ThingEntry[]): Promise<{ server: ThingServer; url: string }> {
  const server = new ThingServer(entries, { port: 0 });
  servers.push(server);
  const url = await server.start();
  return { server, url };
}

/** Start a server with one TestCamera named `test`. */
async function startCamera(options?: MjpegStreamOptions) {
  const camera = new TestCamera(options);
  const { server, url } = await startServer([{ name: "test", thing: camera }]);
  return { camera, stream: camera.stream, server, url, streamUrl: `${url}/test/stream` };
}

/** Poll `predicate` (for state that has no event, e.g. `stream.stats`), bounded in time. */
async function waitUntil(predicate: () => boolean, what: string, ms = WAIT_MS): Promise<number> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

/** Connect a viewer and check it got a proper MJPEG response. */
async function openViewer(url: string, options?: MjpegConnectOptions): Promise<MjpegTestClient> {
  const viewer = await connectMjpeg(url, options);
  expect(viewer.status, `GET ${url}`).toBe(200);
  expect(viewer.headerProblems).toEqual([]);
  return viewer;
}

/** Record the server side of every connection, by the client's port. */
function trackServerSockets(server: ThingServer): Map<number, Socket> {
  const sockets = new Map<number, Socket>();
  server.app.server.on("connection", (socket: Socket) => {
    if (socket.remotePort !== undefined) sockets.set(socket.remotePort, socket);
  });
  return sockets;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const COLOURS = ["#336699", "#993366", "#669933", "#cc9900", "#0099cc", "#444444"];

/** Small real JPEGs, each a different colour (so bytes tell them apart). */
function smallJpegs(count = COLOURS.length): Promise<Buffer[]> {
  return Promise.all(
    COLOURS.slice(0, count).map((background) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background } })
        .jpeg()
        .toBuffer(),
    ),
  );
}

/** ~50 KB JPEGs of random pixels (noise barely compresses). */
function noisyJpegs(count: number): Promise<Buffer[]> {
  const width = 320;
  const height = 256;
  return Promise.all(
    Array.from({ length: count }, () =>
      sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 80 })
        .toBuffer(),
    ),
  );
}

const sequenceOf = (part: MjpegPart) => Number(part.headers["x-sequence"]);

// ---------------------------------------------------------------- wire format

describe("MJPEG wire format", () => {
  it("sends the headers and parts real clients need (ffmpeg, OpenCV, browsers)", async () => {
    const jpegs = await smallJpegs();
    // No re-sends during this test: every part is a new frame.
    const { stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    const first = stream.pushFrame(jpegs[0]!);
    const viewer = await openViewer(streamUrl);
    expect(viewer.headers["content-type"]).toBe("multipart/x-mixed-replace;boundary=frame");
    expect(viewer.headers["cache-control"]).toBe(EXPECTED_CACHE_CONTROL);
    expect(viewer.headers.pragma).toBe("no-cache");
    expect(viewer.headers.connection).toBe("close");
    expect(viewer.headers["transfer-encoding"]).toBeUndefined();

    const pushed: Frame[] = [first];
    await viewer.part(0);
    for (let i = 1; i < jpegs.length; i++) {
      // Alternate the stream's own clock with explicit capture timestamps (sub-ms).
      const timestamp = i % 2 === 0 ? undefined : Date.now() - 20 + i * 0.001234;
      pushed.push(stream.pushFrame(jpegs[i]!, timestamp === undefined ? {} : { timestamp }));
      await viewer.part(i);
    }

    expect(viewer.bodyStart.subarray(0, 9).toString("latin1")).toBe("--frame\r\n");
    expect(viewer.parts).toHaveLength(pushed.length);
    let lastSequence = 0;
    for (const [i, part] of viewer.parts.entries()) {
      const frame = pushed[i]!;
      expect(part.headerLines).toContain("Content-Type: image/jpeg");
      expect(part.headers["content-type"]).toBe("image/jpeg");
      expect(part.headers["content-length"]).toBe(String(part.jpeg.length));
      expect(part.jpeg.equals(frame.jpeg)).toBe(true);
      const stamp = part.headers["x-timestamp"]!;
      expect(stamp).toMatch(/^\d+\.\d{6}$/);
      expect(stamp).toBe((frame.timestamp / 1000).toFixed(6));
      expect(Math.abs(Number(stamp) - Date.now() / 1000)).toBeLessThan(5);
      const sequence = sequenceOf(part);
      expect(sequence).toBe(frame.sequence);
      expect(sequence).toBeGreaterThan(lastSequence);
      lastSequence = sequence;
      for (const line of part.headerLines) expect(line.length).toBeLessThan(128);
      expect(isJpeg(part.jpeg)).toBe(true);
      const metadata = await sharp(part.jpeg).metadata();
      expect(metadata).toMatchObject({ format: "jpeg", width: 64, height: 48 });
    }
    expect(viewer.protocolErrors).toEqual([]);
  });

  it("sends response headers at once to a viewer that connects before the first frame", async () => {
    const [jpeg] = await smallJpegs(1);
    const { stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    // No frame yet: the status line and headers must not wait for one.
    const viewer = await openViewer(streamUrl, { timeoutMs: 2000 });
    const frame = stream.pushFrame(jpeg!);
    const part = await viewer.part(0);
    expect(sequenceOf(part)).toBe(frame.sequence);
    expect(viewer.bodyStart.subarray(0, 9).toString("latin1")).toBe("--frame\r\n");
  });

  it("gives a new viewer the latest frame at once, before any new push", async () => {
    const jpegs = await smallJpegs(2);
    // A re-send would only come after 60 s: a part within 2 s is the immediate one.
    const { stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    stream.pushFrame(jpegs[0]!);
    const latest = stream.pushFrame(jpegs[1]!);
    const connectedAt = performance.now();
    const viewer = await openViewer(streamUrl);
    const part = await viewer.part(0, 2000);
    expect(sequenceOf(part)).toBe(latest.sequence);
    expect(part.jpeg.equals(latest.jpeg)).toBe(true);
    console.log(`first part ${(part.receivedAt - connectedAt).toFixed(1)} ms after connecting`);
  });

  it("re-sends the last frame after resendAfterMs without a new one, and not while frames flow", async () => {
    const jpegs = await smallJpegs(2);
    const { stream, streamUrl } = await startCamera({ resendAfterMs: 300, stallTimeoutMs: 5000 });
    const frame = stream.pushFrame(jpegs[0]!);
    const viewer = await openViewer(streamUrl);
    await viewer.part(3, 4000);
    const parts = viewer.parts.slice(0, 4);
    for (const part of parts) {
      expect(sequenceOf(part)).toBe(frame.sequence);
      expect(part.jpeg.equals(frame.jpeg)).toBe(true);
      expect(part.headers["x-timestamp"]).toBe((frame.timestamp / 1000).toFixed(6));
    }
    const gaps = parts.slice(1).map((part, i) => part.receivedAt - parts[i]!.receivedAt);
    console.log(`re-send gaps (resendAfterMs 300): ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
    // Not before resendAfterMs, and not far past it (the sweep runs every 250 ms). The
    // median absorbs one late read on a busy machine; no gap may be near zero.
    expect(median(gaps)).toBeGreaterThanOrEqual(290);
    expect(median(gaps)).toBeLessThan(800);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(200);

    // Frames every 40 ms: no part is a re-send.
    const before = viewer.parts.length;
    const pushed: number[] = [];
    for (let i = 0; i < 10; i++) {
      pushed.push(stream.pushFrame(jpegs[i % 2]!).sequence);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await viewer.partWithSequence(pushed.at(-1)!);
    const live = viewer.parts.slice(before).map(sequenceOf);
    expect(live).toEqual(pushed);
  });

  it("?advance_headers=1 writes each part's headers straight after the previous JPEG", async () => {
    const jpegs = await smallJpegs(4);
    const { server, stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    const viewer = await openViewer(`${streamUrl}?advance_headers=1`);
    const advance = "--frame\r\nContent-Type: image/jpeg\r\n\r\n";
    // Headers of the first part arrive before any frame exists.
    await viewer.waitFor(() => viewer.headerBlocks === 1, "the first part's headers");
    expect(viewer.bodyStart.toString("latin1")).toBe(advance);

    const pushed: Frame[] = [];
    for (const [i, jpeg] of jpegs.entries()) {
      pushed.push(stream.pushFrame(jpeg));
      const part = await viewer.part(i);
      // The next part's headers come with this JPEG, not with the next frame.
      await viewer.waitFor(() => viewer.headerBlocks === i + 2, `headers after part #${i}`, 1000);
      expect(part.headerLines).toEqual(["Content-Type: image/jpeg"]);
      expect(part.headers["content-length"]).toBeUndefined();
      expect(part.jpeg.equals(pushed[i]!.jpeg)).toBe(true);
      expect((await sharp(part.jpeg).metadata()).format).toBe("jpeg");
    }
    expect(viewer.parts).toHaveLength(jpegs.length);

    // Shutdown ends it cleanly too: `\r\n--frame--\r\n` after the pending headers.
    const report = await server.close();
    const outcome = await viewer.waitClosed();
    expect(outcome).toMatchObject({ closingDelimiter: true, ended: true, error: undefined });
    expect(viewer.emptyFinalPart).toBe(true);
    expect(viewer.parts).toHaveLength(jpegs.length);
    expect(viewer.protocolErrors).toEqual([]);
    expect(report).toMatchObject({ responsesEnded: 1, responsesDestroyed: [], forced: false });
  });
});

// ---------------------------------------------------------------- frame source API

describe("MjpegStream frame source", () => {
  it("rejects a non-JPEG with InvalidInputError and keeps serving later frames", async () => {
    const jpegs = await smallJpegs(2);
    const { stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    const first = stream.pushFrame(jpegs[0]!);
    const viewer = await openViewer(streamUrl);
    await viewer.part(0);

    expect(() => stream.pushFrame(Buffer.from("definitely not a JPEG"))).toThrow(InvalidInputError);
    // Cut off before its EOI marker: incomplete.
    expect(() => stream.pushFrame(jpegs[1]!.subarray(0, jpegs[1]!.length - 64))).toThrow(
      InvalidInputError,
    );
    expect(stream.stats.framesRejected).toBe(2);
    expect(stream.latestFrame).toBe(first);

    const next = stream.pushFrame(jpegs[1]!);
    expect(next.sequence).toBe(first.sequence + 1);
    const part = await viewer.part(1);
    expect(sequenceOf(part)).toBe(next.sequence);
    expect(part.jpeg.equals(jpegs[1]!)).toBe(true);
    expect(viewer.outcome).toBeUndefined();
    expect(viewer.protocolErrors).toEqual([]);
    expect(stream.stats).toMatchObject({ framesPushed: 2, framesRejected: 2 });
  });

  it("nextFrame() resolves with the next frame, rejects on abort; latestFrame is the newest", async () => {
    const jpegs = await smallJpegs(3);
    const stream = new MjpegStream();
    expect(stream.latestFrame).toBeUndefined();
    const old = stream.pushFrame(jpegs[0]!);

    let settled = false;
    const next = stream.nextFrame().finally(() => {
      settled = true;
    });
    expect(stream.watched).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false); // not the frame that was already there
    const fresh = stream.pushFrame(jpegs[1]!);
    await expect(within(next, "nextFrame()")).resolves.toBe(fresh);
    expect(stream.watched).toBe(false);
    expect(fresh.sequence).toBe(old.sequence + 1);

    const controller = new AbortController();
    const aborted = stream.nextFrame({ signal: controller.signal });
    expect(stream.watched).toBe(true);
    controller.abort(new Error("autofocus cancelled"));
    await expect(within(aborted, "aborted nextFrame()")).rejects.toThrow("autofocus cancelled");
    expect(stream.watched).toBe(false);

    await expect(stream.nextFrame({ signal: AbortSignal.abort() })).rejects.toBeDefined();
    expect(stream.watched).toBe(false);

    const newest = stream.pushFrame(jpegs[2]!);
    expect(stream.latestFrame).toBe(newest);
    expect(stream.stats.framesPushed).toBe(3);
  });
});

// ---------------------------------------------------------------- HTTP surface

describe("stream HTTP routes", () => {
  it("GET …/snapshot: 503 Problem Details before the first frame, then the newest JPEG", async () => {
    const jpegs = await smallJpegs(2);
    const { stream, url } = await startCamera();
    const snapshotUrl = `${url}/test/stream/snapshot`;

    const early = await fetch(snapshotUrl);
    expect(early.status).toBe(503);
    expect(early.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(early.headers.get("retry-after")).toMatch(/^\d+$/);
    const problem = (await early.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 503, type: expect.any(String) });
    expect(problem.detail).toEqual(expect.any(String));

    stream.pushFrame(jpegs[0]!);
    const newest = stream.pushFrame(jpegs[1]!, { timestamp: Date.now() - 1.5 });
    const response = await fetch(snapshotUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/jpeg");
    expect(response.headers.get("cache-control")).toBe(EXPECTED_CACHE_CONTROL);
    expect(response.headers.get("x-timestamp")).toBe((newest.timestamp / 1000).toFixed(6));
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.equals(newest.jpeg)).toBe(true);
  });

  it("maxClients: one viewer too many gets 503; after one leaves, a new one is accepted", async () => {
    const [jpeg] = await smallJpegs(1);
    const { stream, streamUrl } = await startCamera({ maxClients: 2, resendAfterMs: 60_000 });
    stream.pushFrame(jpeg!);
    const first = await openViewer(streamUrl);
    const second = await openViewer(streamUrl);
    await Promise.all([first.part(0), second.part(0)]);

    const third = await connectMjpeg(streamUrl);
    expect(third.status).toBe(503);
    expect(third.headers["content-type"]).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(await third.errorBody()) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 503 });
    expect(String(problem.detail)).toContain("2");
    expect(stream.clientCount).toBe(2);

    first.destroy();
    await waitUntil(() => stream.clientCount === 1, "the first viewer to be released");
    const fourth = await openViewer(streamUrl);
    const part = await fourth.part(0);
    expect(part.jpeg.equals(jpeg!)).toBe(true);
    expect(stream.clientCount).toBe(2);
  });

  it("a viewer that disconnects is released at once (stats and long-lived registry)", async () => {
    const jpegs = await smallJpegs(2);
    const { server, stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    stream.pushFrame(jpegs[0]!);
    const leaving = await openViewer(streamUrl);
    const staying = await openViewer(streamUrl);
    await Promise.all([leaving.part(0), staying.part(0)]);
    expect(stream.stats.clients).toHaveLength(2);
    expect(server.longLived.size).toBe(2);
    expect(server.longLived.countByKind()).toEqual({ mjpeg: 2 });

    leaving.destroy();
    const ms = await waitUntil(
      () => stream.stats.clients.length === 1 && server.longLived.size === 1,
      "the server to release the closed viewer",
      2000,
    );
    console.log(`viewer released ${ms.toFixed(1)} ms after its socket was destroyed`);
    expect(ms).toBeLessThan(1000);
    expect(stream.stats.clients.map((client) => client.remoteAddress)).toEqual([
      `127.0.0.1:${staying.localPort}`,
    ]);

    const frame = stream.pushFrame(jpegs[1]!);
    expect(sequenceOf(await staying.part(1))).toBe(frame.sequence);
  });

  it("the TD links the stream (multipart) and its snapshot (image/jpeg); it is no property", async () => {
    const [jpeg] = await smallJpegs(1);
    const { stream, url } = await startCamera({ resendAfterMs: 60_000 });
    stream.pushFrame(jpeg!);
    const response = await fetch(`${url}/test/`, { headers: { accept: "application/json" } });
    expect(response.status).toBe(200);
    const td = (await response.json()) as {
      base: string;
      properties: Record<string, unknown>;
      links: { href: string; rel: string; type: string }[];
    };
    expect(td.base).toBe(`${url}/test/`);
    expect(Object.keys(td.properties)).toContain("exposure");
    expect(Object.keys(td.properties)).not.toContain("stream");
    const streamLink = td.links.find((link) => link.type === "multipart/x-mixed-replace");
    const snapshotLink = td.links.find((link) => link.type === "image/jpeg");
    expect(streamLink).toMatchObject({ rel: "alternate", href: "stream" });
    expect(snapshotLink).toMatchObject({ rel: "alternate", href: "stream/snapshot" });

    // The hrefs resolve against base to the routes that serve them.
    const viewer = await openViewer(new URL(streamLink!.href, td.base).href);
    expect((await viewer.part(0)).jpeg.equals(jpeg!)).toBe(true);
    const snapshot = await fetch(new URL(snapshotLink!.href, td.base));
    expect(snapshot.headers.get("content-type")).toBe("image/jpeg");
    expect(Buffer.from(await snapshot.arrayBuffer()).equals(jpeg!)).toBe(true);
  });
});

// ---------------------------------------------------------------- fan-out under load

describe("fan-out: latest frame wins", () => {
  it("a paused viewer never slows the fast ones, holds at most one frame, and is dropped when stalled", async () => {
    const FPS = 30;
    const WINDOW_MS = 3000;
    const STALL_MS = 1500;
    const jpegs = await noisyJpegs(6);
    const largestPart = Math.max(...jpegs.map((jpeg) => jpeg.length)) + 200;
    const { server, stream, streamUrl } = await startCamera({
      resendAfterMs: 1000,
      stallTimeoutMs: STALL_MS,
    });
    const serverSockets = trackServerSockets(server);
    const heapBefore = process.memoryUsage().heapUsed;
    let heapMax = heapBefore;
    let slowDroppedMax = 0;
    let slowBufferedMax = 0;

    const slow = await openViewer(streamUrl, { paused: true });
    const slowAddress = `127.0.0.1:${slow.localPort}`;
    const slowSocket = serverSockets.get(slow.localPort);
    expect(slowSocket, "server side of the slow viewer's connection").toBeDefined();
    let slowClosedAt: number | undefined;
    slowSocket!.once("close", () => {
      slowClosedAt = performance.now();
    });
    const sample = () => {
      const slowStats = stream.stats.clients.find((c) => c.remoteAddress === slowAddress);
      if (slowStats) slowDroppedMax = Math.max(slowDroppedMax, slowStats.framesDropped);
      if (!slowSocket!.destroyed) {
        slowBufferedMax = Math.max(slowBufferedMax, slowSocket!.writableLength);
      }
      heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
    };

    // 1. Fill the kernel's socket buffers (several MB on loopback) as fast as possible,
    //    until the server sees the slow viewer's socket full: it starts dropping frames.
    const fillStart = performance.now();
    let filled = 0;
    while (slowDroppedMax === 0) {
      if (performance.now() - fillStart > WAIT_MS) {
        throw new Error(`slow viewer not stalled after ${filled} frames (${slowBufferedMax} B)`);
      }
      stream.pushFrame(jpegs[filled++ % jpegs.length]!);
      await new Promise((resolve) => setImmediate(resolve));
      sample();
    }
    const stallSeenAt = performance.now();
    const fillMs = stallSeenAt - fillStart;

    // 2. Three fast viewers, 30 frames/s for 3 s.
    const fast = await Promise.all([0, 1, 2].map(() => openViewer(streamUrl)));
    await Promise.all(fast.map((viewer) => viewer.part(0)));
    const pushedAt = new Map<number, number>();
    const windowStart = performance.now();
    await within(
      new Promise<void>((resolve) => {
        let i = 0;
        const timer = setInterval(() => {
          const frame = stream.pushFrame(jpegs[i++ % jpegs.length]!);
          pushedAt.set(frame.sequence, performance.now());
          sample();
          if (performance.now() - windowStart >= WINDOW_MS) {
            clearInterval(timer);
            resolve();
          }
        }, 1000 / FPS);
      }),
      "the push window",
      WINDOW_MS + 5000,
    );
    const sequences = [...pushedAt.keys()];
    const firstSequence = sequences[0]!;
    const lastSequence = sequences.at(-1)!;
    await Promise.all(fast.map((viewer) => viewer.partWithSequence(lastSequence, 3000)));

    // Fast viewers: (nearly) every frame, promptly.
    const latencies: number[] = [];
    const received = fast.map((viewer) => {
      const seen = new Set<number>();
      for (const part of viewer.parts) {
        const sequence = sequenceOf(part);
        if (sequence < firstSequence || sequence > lastSequence) continue;
        seen.add(sequence);
        latencies.push(part.receivedAt - pushedAt.get(sequence)!);
      }
      expect(viewer.protocolErrors).toEqual([]);
      return seen.size;
    });
    const heapGrowthMb = (heapMax - heapBefore) / 2 ** 20;
    console.log(
      `slow-client test: slow viewer stalled after ${filled} frames (${fillMs.toFixed(0)} ms); ` +
        `window: ${sequences.length} frames of ~${Math.round(largestPart / 1024)} KB at ${FPS} fps, ` +
        `fast viewers received ${received.join(", ")}, latency p50 ${median(latencies).toFixed(1)} ms; ` +
        `slow viewer: ${slowDroppedMax} frames dropped, at most ${slowBufferedMax} B buffered ` +
        `server-side, cut ${slowClosedAt === undefined ? "(not yet)" : (slowClosedAt - stallSeenAt).toFixed(0)} ms ` +
        `after the stall was seen; heap growth ${heapGrowthMb.toFixed(1)} MB`,
    );
    expect(sequences.length).toBeGreaterThan(WINDOW_MS / (1000 / FPS) / 2);
    for (const count of received) expect(count).toBeGreaterThanOrEqual(0.95 * sequences.length);
    expect(median(latencies)).toBeLessThan(100);

    // The slow viewer: frames dropped (not queued), at most one frame held for it.
    expect(slowDroppedMax).toBeGreaterThan(0);
    expect(slowBufferedMax).toBeLessThanOrEqual(largestPart + 4096);
    expect(heapGrowthMb).toBeLessThan(30);

    // Stalled past stallTimeoutMs: the server cut it (and released it), not much later.
    await waitUntil(() => slowClosedAt !== undefined, "the server to drop the stalled viewer");
    const cutAfter = slowClosedAt! - stallSeenAt;
    expect(cutAfter).toBeGreaterThanOrEqual(STALL_MS - 100);
    expect(cutAfter).toBeLessThan(STALL_MS + 1000);
    expect(stream.stats.clients.map((c) => c.remoteAddress)).not.toContain(slowAddress);
    expect(server.longLived.size).toBe(3);
    slow.resume();
    const outcome = await slow.waitClosed();
    expect(outcome.closingDelimiter).toBe(false);
    expect(outcome.clean).toBe(false);
    expect(slow.parts.length).toBeLessThan(filled + sequences.length);
    for (const viewer of fast) expect(viewer.outcome).toBeUndefined();
  });
});

// ---------------------------------------------------------------- shutdown

describe("shutdown with open streams", () => {
  it("server.close() ends 20 viewers cleanly with the closing delimiter, in well under 1 s", async () => {
    const [jpeg] = await smallJpegs(1);
    const { server, stream, streamUrl } = await startCamera({ resendAfterMs: 60_000 });
    stream.pushFrame(jpeg!);
    const viewers = await Promise.all(Array.from({ length: 20 }, () => openViewer(streamUrl)));
    await Promise.all(viewers.map((viewer) => viewer.part(0)));
    expect(server.longLived.size).toBe(20);

    const started = performance.now();
    const report = await within(server.close(), "server.close()", 6000);
    const closeMs = performance.now() - started;
    console.log(
      `close() with 20 open viewers: ${closeMs.toFixed(1)} ms (report durationMs ${report.durationMs.toFixed(1)})`,
    );

    const outcomes = await Promise.all(viewers.map((viewer) => viewer.waitClosed(2000)));
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome, `viewer ${i}`).toMatchObject({
        closingDelimiter: true,
        ended: true,
        error: undefined,
        truncated: false,
        clean: true,
      });
      expect(viewers[i]!.protocolErrors).toEqual([]);
    }
    expect(report).toMatchObject({
      responsesEnded: 20,
      responsesDestroyed: [],
      forced: false,
      hungThings: [],
      failedThings: [],
    });
    expect(closeMs).toBeLessThan(1000);
    expect(server.longLived.size).toBe(0);
    expect(stream.stats.clients).toEqual([]);
  });
});

// ---------------------------------------------------------------- simulated microscope

describe("simulated microscope camera", () => {
  it("streams frames at the configured size that blur away from the focal plane; preview is half size", async () => {
    const stage = new SimulatedStage();
    const camera = new SimulatedCamera({ width: 320, height: 240, fps: 10 });
    const { url } = await startServer(microscopeEntries({ stage, camera }));
    stage.position = { x: 0, y: 0, z: 1000 };
    const [live, preview] = await Promise.all([
      openViewer(`${url}/camera/stream`, { timeoutMs: 15_000 }),
      openViewer(`${url}/camera/preview`, { timeoutMs: 15_000 }),
    ]);
    // Drawing the specimen takes a while on a busy machine: the first frame may be slow.
    await live.part(0, 15_000);

    /** JPEG sizes of `count` frames captured entirely after the stage moved to z. */
    const sizesAt = async (z: number, count: number): Promise<number[]> => {
      stage.position = { x: 0, y: 0, z };
      // The frame being captured now may predate the move; the one after cannot.
      const after = camera.stream.stats.framesPushed + 2;
      await live.partWithSequence(after, 5000);
      const startIndex = live.parts.findIndex((p) => sequenceOf(p) >= after);
      await live.part(startIndex + count - 1, 5000);
      return live.parts.slice(startIndex, startIndex + count).map((p) => p.jpeg.length);
    };

    expect(camera.blurAt(1000)).toBe(0);
    const focused = await sizesAt(1000, 3);
    const far = 1000 + 4000;
    expect(camera.blurAt(far)).toBeGreaterThan(20);
    const blurred = await sizesAt(far, 3);
    console.log(
      `simulated camera JPEG sizes: in focus ${focused.join(", ")} B; z=${far}: ${blurred.join(", ")} B`,
    );
    expect(median(blurred)).toBeLessThan(0.6 * median(focused));

    const liveMeta = await sharp(live.parts.at(-1)!.jpeg).metadata();
    expect(liveMeta).toMatchObject({ format: "jpeg", width: 320, height: 240 });
    const previewPart = await preview.part(0, 5000);
    const previewMeta = await sharp(previewPart.jpeg).metadata();
    expect(previewMeta).toMatchObject({ format: "jpeg", width: 160, height: 120 });
    for (const viewer of [live, preview]) expect(viewer.protocolErrors).toEqual([]);
  });
});
