/**
 * Load client of `bench/shutdown.ts`, in its own process: opens BENCH_MJPEG MJPEG viewers,
 * BENCH_SSE event streams and BENCH_WS websockets on the server at BENCH_URL, starts a
 * long action (a slow `stage/moveRelative`) with an SSE watcher on its invocation, prints
 * `{"event":"ready"}` once every stream has delivered something, then waits for the server
 * to end them all and prints `{"event":"result", …}`: how many viewers got the closing
 * delimiter and a clean end, event streams that ended cleanly, websockets closed with
 * 1001, whether the watcher saw `cancelled` last, and every error.
 */
import { get, request } from "node:http";
import { WebSocket } from "ws";

const url = process.env.BENCH_URL;
const counts = {
  mjpeg: Number(process.env.BENCH_MJPEG ?? 500),
  sse: Number(process.env.BENCH_SSE ?? 100),
  ws: Number(process.env.BENCH_WS ?? 20),
};
const READY_TIMEOUT_MS = Number(process.env.BENCH_READY_TIMEOUT_MS ?? 30_000);
const CLOSE_TIMEOUT_MS = Number(process.env.BENCH_CLOSE_TIMEOUT_MS ?? 15_000);

const outcome = {
  mjpegClosing: 0,
  mjpegClean: 0,
  sseClean: 0,
  ws1001: 0,
  watcherLastStatus: undefined,
  errors: 0,
  firstError: undefined,
};
let open = 0;
let onAllClosed;
const closedOne = () => {
  open -= 1;
  if (open === 0) onAllClosed?.();
};
const failed = (what, error) => {
  outcome.errors += 1;
  outcome.firstError ??= `${what}: ${error?.message ?? error}`;
};

function json(method, path, body) {
  const text = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, {
      method,
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      let data = "";
      res.setEncoding("utf8").on("data", (c) => {
        data += c;
      });
      res.once("end", () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.end(text);
  });
}

/** GET a long-lived response; resolves on its headers (MJPEG: once its first bytes arrived). */
function openStream(path, accept, onEnd) {
  const waitForData = accept !== "text/event-stream";
  open += 1;
  return new Promise((resolve, reject) => {
    const req = get(`${url}${path}`, { agent: false, headers: { accept } });
    let tail = "";
    let first = true;
    let body = "";
    req.once("error", (error) => {
      failed(path, error);
      reject(error);
    });
    req.once("response", (res) => {
      if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode}`));
      if (!waitForData) resolve();
      let ended = false;
      res.on("data", (chunk) => {
        const text = chunk.toString("latin1");
        tail = (tail + text).slice(-64);
        if (accept === "text/event-stream") body += text;
        if (first) {
          first = false;
          resolve();
        }
      });
      res.once("end", () => {
        ended = true;
      });
      res.on("error", (error) => failed(path, error));
      res.once("close", () => {
        onEnd({ ended, complete: res.complete, tail, body });
        closedOne();
      });
    });
  });
}

function openWebSocket() {
  open += 1;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/stage/ws`);
    socket.on("error", (error) => {
      failed("websocket", error);
      reject(error);
    });
    socket.once("open", () => {
      socket.send(
        JSON.stringify({ messageType: "addPropertyObservation", data: { position: true } }),
      );
      resolve();
    });
    socket.once("close", (code) => {
      if (code === 1001) outcome.ws1001 += 1;
      closedOne();
    });
  });
}

async function main() {
  // A move of hours: running when the signal comes, with a watcher on its invocation.
  await json("PUT", "/stage/speed", 1);
  const move = await json("POST", "/stage/moveRelative", { x: 9000 });
  if (move.status !== 201) throw new Error(`moveRelative answered ${move.status}`);
  const watcher = openStream(move.headers.location, "text/event-stream", ({ body }) => {
    const statuses = [...body.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]).status);
    outcome.watcherLastStatus = statuses.at(-1);
  });
  const streams = [watcher];
  for (let i = 0; i < counts.mjpeg; i++) {
    streams.push(
      openStream("/camera/stream", "multipart/x-mixed-replace", ({ ended, complete, tail }) => {
        if (tail.endsWith("\r\n--frame--\r\n")) outcome.mjpegClosing += 1;
        if (ended && complete) outcome.mjpegClean += 1;
      }),
    );
  }
  for (let i = 0; i < counts.sse; i++) {
    const path = i % 2 ? "/stage/position" : "/camera/properties";
    streams.push(
      openStream(path, "text/event-stream", ({ ended, complete }) => {
        if (ended && complete) outcome.sseClean += 1;
      }),
    );
  }
  for (let i = 0; i < counts.ws; i++) streams.push(openWebSocket());
  const timeout = (ms, what) =>
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${what} after ${ms} ms`)), ms).unref(),
    );
  await Promise.race([Promise.all(streams), timeout(READY_TIMEOUT_MS, "not every stream opened")]);
  const allClosed = new Promise((resolve) => {
    onAllClosed = resolve;
  });
  console.log(JSON.stringify({ event: "ready", open }));
  await Promise.race([allClosed, timeout(CLOSE_TIMEOUT_MS, "not every stream was closed")]).catch(
    (error) => failed("close", error),
  );
  console.log(JSON.stringify({ event: "result", stillOpen: open, ...outcome }));
}

main().then(
  () => process.exit(0),
  (error) => {
    console.log(JSON.stringify({ event: "error", message: String(error?.message ?? error) }));
    process.exit(1);
  },
);
