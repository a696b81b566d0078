/**
 * Baseline for `bench/observe.ts`: a bare `node:http` server with the same API and the
 * same clock as `bench/observe-server.ts`, fanning each change out to every subscriber with
 * `res.write` of the very text labthings-ts sends (`event: tick`, `data: {"seq","t"}`,
 * `id: N`). No back-pressure handling, no coalescing, no heartbeats: the floor under any
 * Node SSE server.
 *
 * - `GET /ticker/tick` with `Accept: text/event-stream`: SSE, same headers as labthings-ts;
 *   without it, the current value as JSON.
 * - `PUT /ticker/rate` (changes per second, 0 stops) and `PUT /ticker/pad` (bytes): 204.
 *
 * Listens on 127.0.0.1, port 0, and prints `{"url","pid"}` on stdout; exits on SIGTERM.
 */
import { createServer } from "node:http";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store, no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};
/** Most changes made in one timer tick: 50 ms worth (as in bench/observe-server.ts). */
const MAX_BURST_MS = 50;

const subscribers = new Set();
let tick = { seq: 0, t: 0 };
let pad = 0;
let rate = 0;
let seq = 0;
let id = 0;
let timer;

function publish(value) {
  tick = value;
  id += 1;
  const text = `event: tick\ndata: ${JSON.stringify(value)}\nid: ${id}\n\n`;
  for (const response of subscribers) response.write(text);
}

function setRate(value) {
  rate = value;
  clearInterval(timer);
  timer = undefined;
  if (value <= 0) return;
  const startedAt = performance.now();
  const maxBurst = Math.max(1, Math.ceil((value * MAX_BURST_MS) / 1000));
  let made = 0;
  timer = setInterval(() => {
    const due = Math.floor(((performance.now() - startedAt) * value) / 1000);
    let count = due - made;
    if (count > maxBurst) {
      made += count - maxBurst;
      count = maxBurst;
    }
    const padding = pad > 0 ? "x".repeat(pad) : undefined;
    for (; count > 0; count--) {
      made += 1;
      seq += 1;
      const t = performance.timeOrigin + performance.now();
      publish(padding === undefined ? { seq, t } : { seq, t, pad: padding });
    }
  }, 1);
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => resolve(body));
    request.on("error", reject);
  });
}

const server = createServer(async (request, response) => {
  const path = request.url?.split("?")[0];
  if (request.method === "GET" && path === "/ticker/tick") {
    if (!(request.headers.accept ?? "").includes("text/event-stream")) {
      const body = JSON.stringify(tick);
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      response.end(body);
      return;
    }
    response.writeHead(200, SSE_HEADERS);
    response.flushHeaders();
    request.socket.setNoDelay(true);
    subscribers.add(response);
    response.once("close", () => subscribers.delete(response));
    return;
  }
  if (request.method === "PUT" && (path === "/ticker/rate" || path === "/ticker/pad")) {
    const value = Number(JSON.parse(await readBody(request)));
    if (path === "/ticker/rate") setRate(value);
    else pad = value;
    response.writeHead(204);
    response.end();
    return;
  }
  if (request.method === "GET" && path === "/ticker/rate") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(rate));
    return;
  }
  response.writeHead(404, { "content-type": "text/plain" });
  response.end("not found");
});
server.keepAliveTimeout = 72_000;

server.listen(0, "127.0.0.1", () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  console.log(JSON.stringify({ url, pid: process.pid }));
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    clearInterval(timer);
    for (const response of subscribers) response.end();
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
