/**
 * Load client of `bench/observe.ts`, its own process so its CPU is not the server's.
 * Settings come as JSON in BENCH_CLIENT:
 *
 *   { url, subscribers, rate, mode: "rate" | "stall", warmupMs, measureMs, settleMs,
 *     serverPid, fillPad, fillMs, readyTimeoutMs }
 *
 * Opens `subscribers` SSE responses to `GET {url}/ticker/tick` (node:http, agent: false,
 * `Accept: text/event-stream`) and parses every message (`event:`, `data:`, `id:` lines,
 * a blank line ends it); the data is the property value `{ seq, t }`. Then:
 *
 * - rate: `PUT /ticker/rate`, waits warmupMs, then records for measureMs every message
 *   each subscriber receives and its latency = receive time − t (same machine clock), and
 *   the server's CPU time over the window (/proc/<pid>/task/<tid>/schedstat, all threads).
 *   Then `PUT /ticker/rate 0`, reads the last value (`GET /ticker/tick`) and waits until
 *   every subscriber has it (bounded by settleMs). Every subscriber must have received
 *   every change from the first after it subscribed to the last: no seq gap.
 * - stall: one subscriber opens first and never reads (its socket paused); values padded
 *   to `fillPad` bytes run at `rate` for fillMs, so its socket (kernel buffers included)
 *   fills and the server has to hold changes for it. Then padding off, the other
 *   subscribers open, and the window is recorded as in `rate`, with the server's RSS
 *   (/proc/<pid>/status) sampled every 250 ms. At the end the stalled subscriber resumes
 *   reading: it must catch up to the last value, having skipped (coalesced) changes.
 *
 * Prints one line `{"event":"result",...}` and exits 0; any failure prints
 * `{"event":"error","message"}` and exits 1. Every wait is bounded; a watchdog ends it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";

const config = JSON.parse(process.env.BENCH_CLIENT ?? "{}");
const {
  url,
  subscribers: count = 100,
  rate,
  mode = "rate",
  warmupMs = 500,
  measureMs = 2000,
  settleMs = 3000,
  serverPid,
  fillPad = 4096,
  fillMs = 2500,
  readyTimeoutMs = 10_000,
} = config;
const RSS_SAMPLE_MS = 250;
const WATCHDOG_MS = 60_000;

const now = () => performance.timeOrigin + performance.now();
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(message) {
  print({ event: "error", message });
  process.exit(1);
}
setTimeout(
  () => fail(`watchdog: client still running after ${WATCHDOG_MS} ms`),
  WATCHDOG_MS,
).unref();

// ---------------------------------------------------------------------------------------
// The server process, from /proc

function cpuMs(pid) {
  let ms = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ms +=
        Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0]) / 1e6;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ms;
}

function rssKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

// ---------------------------------------------------------------------------------------
// Plain HTTP requests for control

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${url}${path}`, {
      method,
      agent: false,
      headers: text === undefined ? {} : { "content-type": "application/json" },
      timeout: 5000,
    });
    req.once("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.once("error", reject);
    req.once("response", (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        data += chunk;
      });
      res.on("end", () => {
        if ((res.statusCode ?? 0) >= 300) {
          reject(new Error(`${method} ${path}: ${res.statusCode} ${data}`));
        } else resolve(data === "" ? undefined : JSON.parse(data));
      });
    });
    req.end(text);
  });
}

// ---------------------------------------------------------------------------------------
// Subscribers

/** Shared by every subscriber: the measurement window and its latency samples. */
const window = { open: false, latencies: new Float64Array(1 << 20), samples: 0 };

function recordLatency(ms) {
  if (window.samples === window.latencies.length) {
    const bigger = new Float64Array(window.latencies.length * 2);
    bigger.set(window.latencies);
    window.latencies = bigger;
  }
  window.latencies[window.samples++] = ms;
}

class Subscriber {
  received = 0;
  /** Messages received while the window was open. */
  inWindow = 0;
  firstSeq = -1;
  lastSeq = -1;
  lastId = -1;
  /** Messages whose seq was not the previous one + 1 (changes skipped), and how many skipped. */
  gaps = 0;
  skipped = 0;
  /** Lowest and highest seq made (by t) inside the window. */
  windowMinSeq = Number.POSITIVE_INFINITY;
  windowMaxSeq = -1;
  malformed = 0;
  errors = [];
  ended = false;
  #buffer = "";
  #event = "";
  #data = "";
  #id = "";

  constructor(req, res) {
    this.req = req;
    this.res = res;
    res.setEncoding("utf8");
    res.on("data", (chunk) => this.#onData(chunk));
    res.on("end", () => {
      this.ended = true;
    });
    res.on("error", (error) => this.errors.push(error.message));
    req.on("error", (error) => this.errors.push(error.message));
  }

  /** Stop reading: Node's buffer, then the kernel's, fill up, then the server's writes stall. */
  stall() {
    this.res.pause();
    this.req.socket?.pause();
  }

  resume() {
    this.req.socket?.resume();
    this.res.resume();
  }

  #onData(chunk) {
    const text = this.#buffer + chunk;
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n", start);
      if (end < 0) break;
      this.#line(text.slice(start, end));
      start = end + 1;
    }
    this.#buffer = text.slice(start);
  }

  #line(line) {
    if (line === "") {
      if (this.#data !== "" || this.#event !== "") this.#dispatch();
      this.#event = "";
      this.#data = "";
      this.#id = "";
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment, e.g. a heartbeat */) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data = this.#data === "" ? value : `${this.#data}\n${value}`;
    else if (field === "id") this.#id = value;
  }

  #dispatch() {
    const receivedAt = now();
    if (this.#event !== "tick") {
      this.malformed += 1;
      return;
    }
    let value;
    try {
      value = JSON.parse(this.#data);
    } catch {
      this.malformed += 1;
      return;
    }
    const id = Number(this.#id);
    if (!Number.isInteger(value.seq) || typeof value.t !== "number" || !(id > this.lastId)) {
      this.malformed += 1;
      return;
    }
    this.lastId = id;
    this.received += 1;
    if (this.firstSeq < 0) this.firstSeq = value.seq;
    else if (value.seq !== this.lastSeq + 1) {
      this.gaps += 1;
      this.skipped += value.seq - this.lastSeq - 1;
    }
    this.lastSeq = value.seq;
    if (window.open) {
      this.inWindow += 1;
      recordLatency(receivedAt - value.t);
      if (value.t >= window.start) {
        if (value.seq < this.windowMinSeq) this.windowMinSeq = value.seq;
        if (value.seq > this.windowMaxSeq) this.windowMaxSeq = value.seq;
      }
    }
  }
}

function subscribe() {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/ticker/tick`, {
      agent: false,
      headers: { accept: "text/event-stream" },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no SSE response headers within ${readyTimeoutMs} ms`));
    }, readyTimeoutMs);
    req.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.once("response", (res) => {
      clearTimeout(timer);
      if (
        res.statusCode !== 200 ||
        !/^text\/event-stream/.test(res.headers["content-type"] ?? "")
      ) {
        reject(new Error(`SSE answered ${res.statusCode} ${res.headers["content-type"]}`));
        return;
      }
      resolve(new Subscriber(req, res));
    });
    req.end();
  });
}

async function until(condition, ms) {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

// ---------------------------------------------------------------------------------------

/** Open the window, record for measureMs, close it; server CPU and RSS over it. */
async function measure() {
  const rss = [];
  const cpu0 = cpuMs(serverPid);
  const client0 = process.cpuUsage();
  window.start = now();
  const t0 = performance.now();
  window.open = true;
  const sampler = setInterval(() => rss.push(rssKb(serverPid)), RSS_SAMPLE_MS);
  rss.push(rssKb(serverPid));
  await sleep(measureMs);
  window.open = false;
  clearInterval(sampler);
  rss.push(rssKb(serverPid));
  const seconds = (performance.now() - t0) / 1000;
  window.end = now();
  const client = process.cpuUsage(client0);
  return {
    seconds,
    serverCpuMs: cpuMs(serverPid) - cpu0,
    clientCpuMs: (client.user + client.system) / 1000,
    rssKb: rss,
  };
}

/** Stop the ticker, read the last value, wait (bounded) until `subs` all have it. */
async function settle(subs) {
  await call("PUT", "/ticker/rate", 0);
  // A tick already running finishes within the same turn of the server's loop.
  await sleep(20);
  const last = await call("GET", "/ticker/tick");
  const settled = await until(() => subs.every((s) => s.lastSeq >= last.seq), settleMs);
  return { lastSeq: last.seq, settled };
}

function summarise(subs, timing, last) {
  const latencies = window.latencies.subarray(0, window.samples).sort();
  const pct = (p) =>
    latencies.length === 0
      ? Number.NaN
      : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)];
  const firstSeqs = subs.map((s) => s.firstSeq);
  const windowMin = Math.min(...subs.map((s) => s.windowMinSeq));
  const windowMax = Math.max(...subs.map((s) => s.windowMaxSeq));
  const delivered = subs.reduce((n, s) => n + s.inWindow, 0);
  return {
    subscribers: subs.length,
    seconds: timing.seconds,
    /** Changes made inside the window (by their t), per second. */
    changesPerSecond: windowMax >= windowMin ? (windowMax - windowMin + 1) / timing.seconds : 0,
    delivered,
    deliveredPerSecond: delivered / timing.seconds,
    p50: pct(50),
    p99: pct(99),
    max: latencies.length ? latencies[latencies.length - 1] : Number.NaN,
    serverCpuMs: timing.serverCpuMs,
    clientCpuMs: timing.clientCpuMs,
    rssKb: timing.rssKb,
    lastSeq: last.lastSeq,
    settled: last.settled,
    firstSeqSpread: Math.max(...firstSeqs) - Math.min(...firstSeqs),
    missingAtEnd: subs.filter((s) => s.lastSeq < last.lastSeq).length,
    gaps: subs.reduce((n, s) => n + s.gaps, 0),
    skipped: subs.reduce((n, s) => n + s.skipped, 0),
    subscribersWithGaps: subs.filter((s) => s.gaps > 0).length,
    malformed: subs.reduce((n, s) => n + s.malformed, 0),
    errors: subs.flatMap((s) => s.errors).slice(0, 5),
    endedEarly: subs.filter((s) => s.ended).length,
  };
}

async function runRate() {
  const subs = await Promise.all(Array.from({ length: count }, subscribe));
  await call("PUT", "/ticker/rate", rate);
  await sleep(warmupMs);
  const timing = await measure();
  const last = await settle(subs);
  return summarise(subs, timing, last);
}

async function runStall() {
  const stalled = await subscribe();
  stalled.stall();
  await call("PUT", "/ticker/pad", fillPad);
  await call("PUT", "/ticker/rate", rate);
  await sleep(fillMs);
  await call("PUT", "/ticker/pad", 0);
  const fillSeq = (await call("GET", "/ticker/tick")).seq;
  const others = await Promise.all(Array.from({ length: count - 1 }, subscribe));
  await sleep(warmupMs);
  const timing = await measure();
  const last = await settle(others);
  const result = summarise(others, timing, last);
  // Now let the stalled one read: its backlog, then the latest value, then nothing more.
  const stalledBefore = stalled.received;
  stalled.resume();
  const caughtUp = await until(() => stalled.lastSeq >= last.lastSeq, 10_000);
  return {
    ...result,
    fillSeq,
    stalled: {
      receivedWhileStalled: stalledBefore,
      received: stalled.received,
      caughtUp,
      lastSeq: stalled.lastSeq,
      gaps: stalled.gaps,
      skipped: stalled.skipped,
      errors: stalled.errors,
      ended: stalled.ended,
    },
  };
}

try {
  if (!url || !serverPid) throw new Error("BENCH_CLIENT needs url and serverPid");
  const result = mode === "stall" ? await runStall() : await runRate();
  print({ event: "result", ...result });
  process.exit(0);
} catch (error) {
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}
