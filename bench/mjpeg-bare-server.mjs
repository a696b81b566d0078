/**
 * Baseline for `bench/mjpeg.ts`: a bare `node:http` MJPEG server, the floor any Node
 * framework sits on. Same wire format as labthings-ts (src/runtime/mjpeg-fanout.ts):
 *
 *   Content-Type: multipart/x-mixed-replace;boundary=frame, Connection: close, raw body
 *   (no chunked encoding); each part `--frame\r\nContent-Type: image/jpeg\r\n
 *   Content-Length: N\r\nX-Timestamp: s.us\r\nX-Sequence: n\r\n\r\n<jpeg>\r\n`, built once
 *   as one Buffer and written to every client; latest frame wins (a client whose socket
 *   has not drained is skipped and gets the newest frame on 'drain'); on SIGTERM every
 *   client gets the closing delimiter `--frame--\r\n`, then the process exits.
 *
 * Frames: every `*.jpg` in BENCH_FRAMES_DIR (sorted), pushed at BENCH_FPS (default 30) by a
 * fixed-rate clock (no drift, no catch-up burst). Serves GET /camera/stream on 127.0.0.1,
 * port 0; prints `{"url", "stream", "pid"}` on stdout when listening, and
 * `{"shutdown": {...}}` just before exiting.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const dir = process.env.BENCH_FRAMES_DIR;
if (!dir) throw new Error("BENCH_FRAMES_DIR is not set");
const frames = readdirSync(dir)
  .filter((name) => name.endsWith(".jpg"))
  .sort()
  .map((name) => readFileSync(join(dir, name)));
if (frames.length === 0) throw new Error(`no .jpg in ${dir}`);
const FPS = Number(process.env.BENCH_FPS ?? 30);
const PATH = "/camera/stream";

const CRLF = Buffer.from("\r\n");
const CLOSING = Buffer.from("--frame--\r\n");
const HEADERS = {
  "content-type": "multipart/x-mixed-replace;boundary=frame",
  "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
  pragma: "no-cache",
  connection: "close",
  "x-accel-buffering": "no",
};

/** @type {Set<{ response: import("node:http").ServerResponse, waiting: boolean, pending: Buffer | undefined, ended: boolean }>} */
const clients = new Set();
/** @type {Buffer | undefined} */
let latest;
let sequence = 0;
let closing = false;

function write(client, part) {
  if (!client.response.write(part)) {
    client.waiting = true;
    client.response.once("drain", () => {
      client.waiting = false;
      const pending = client.pending;
      client.pending = undefined;
      if (pending && !client.ended) write(client, pending);
    });
  }
}

function publish(jpeg, timestamp) {
  sequence += 1;
  const headers =
    `--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n` +
    `X-Timestamp: ${(timestamp / 1000).toFixed(6)}\r\nX-Sequence: ${sequence}\r\n\r\n`;
  const part = Buffer.concat([Buffer.from(headers, "latin1"), jpeg, CRLF]);
  latest = part;
  for (const client of clients) {
    if (client.ended) continue;
    if (client.waiting) client.pending = part;
    else write(client, part);
  }
}

// Fixed-rate frame clock: tick k is due at t0 + k / FPS; more than a period late, realign.
let clock;
let pushed = 0;
{
  const period = 1000 / FPS;
  let due = performance.now();
  const tick = () => {
    publish(frames[pushed % frames.length], performance.timeOrigin + performance.now());
    pushed += 1;
    due += period;
    const now = performance.now();
    if (due < now - period) due = now;
    clock = setTimeout(tick, Math.max(0, due - now));
  };
  clock = setTimeout(tick, 0);
}

const server = createServer({ noDelay: true }, (request, response) => {
  if (closing || request.method !== "GET" || request.url.split("?")[0] !== PATH) {
    response.writeHead(closing ? 503 : 404, {
      "content-type": "text/plain",
      "content-length": "0",
      connection: "close",
    });
    response.end();
    return;
  }
  response.useChunkedEncodingByDefault = false;
  response.writeHead(200, HEADERS);
  const client = { response, waiting: false, pending: undefined, ended: false };
  clients.add(client);
  if (latest) write(client, latest);
  response.once("close", () => {
    client.ended = true;
    client.pending = undefined;
    clients.delete(client);
  });
});

process.once("SIGTERM", () => {
  const started = performance.now();
  closing = true;
  clearTimeout(clock);
  const ended = clients.size;
  for (const client of clients) {
    client.ended = true;
    client.pending = undefined;
    client.response.end(CLOSING);
  }
  // Hard deadline, as any real server has: cut whatever is still open.
  const force = setTimeout(() => {
    server.closeAllConnections();
    console.log(JSON.stringify({ shutdown: { forced: true, ended } }));
    process.exit(1);
  }, 5000);
  server.close(() => {
    clearTimeout(force);
    const durationMs = performance.now() - started;
    console.log(JSON.stringify({ shutdown: { durationMs, ended, forced: false }, pushed }));
    process.exit(0);
  });
  server.closeIdleConnections();
});

server.listen(0, "127.0.0.1", () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  console.log(JSON.stringify({ url, stream: url + PATH, pid: process.pid }));
});
