/**
 * Load client of `bench/mjpeg.ts`, run as its own process so its CPU is not counted
 * against the server. Settings come as JSON in BENCH_CLIENT:
 *
 *   { url, clients, mode: "throughput" | "shutdown", warmupMs, measureMs, serverPid,
 *     clkTck, readyTimeoutMs, closeTimeoutMs }
 *
 * Opens `clients` MJPEG streams (`http.get`, agent: false, in batches), parses each body
 * into parts by Content-Length (JPEG bytes are skipped, never copied), and waits until
 * every stream has delivered a frame. Then:
 *
 * - throughput: waits warmupMs, reads the server's CPU time (/proc/<pid>/task/<tid>/schedstat,
 *   all threads, ns) and VmRSS, records for measureMs every part completed by each client
 *   and its latency = receive time − X-Timestamp (same machine, same clock), reads /proc
 *   again, prints `{"event":"result",...}` and exits.
 * - shutdown: prints `{"event":"ready"}` (the bench then sends SIGTERM to the server),
 *   waits until every stream has closed (bounded by closeTimeoutMs) and prints how each
 *   ended: closing delimiter `--frame--` received and a clean end of body, or not.
 *
 * Every wait is bounded; any failure prints `{"event":"error"}` and exits 1.
 */
import { readdirSync, readFileSync } from "node:fs";
import { get } from "node:http";

const config = JSON.parse(process.env.BENCH_CLIENT ?? "{}");
const {
  url,
  clients: count,
  mode,
  warmupMs = 1500,
  measureMs = 5000,
  serverPid,
  clkTck = 100,
  readyTimeoutMs = 20_000,
  closeTimeoutMs = 10_000,
} = config;
const BATCH = 50;
const now = () => performance.timeOrigin + performance.now();
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

function fail(message) {
  print({ event: "error", message });
  process.exit(1);
}

/**
 * Server CPU time (ms, all threads) and resident memory (kB), read from /proc. CPU comes
 * from each thread's schedstat (nanoseconds); /proc/<pid>/stat's utime+stime only counts
 * whole clock ticks (10 ms), too coarse for a server that is idle most of the time.
 */
function readProc(pid) {
  let cpuMs = 0;
  let source = "schedstat";
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        cpuMs +=
          Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0]) / 1e6;
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  } catch {
    cpuMs = Number.NaN;
  }
  if (!Number.isFinite(cpuMs) || cpuMs === 0) {
    source = "stat";
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / clkTck;
  }
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return { cpuMs, source, rssKb, at: performance.now() };
}

// ---------------------------------------------------------------------------------------
// Streams and the part parser

let measuring = false;
let latencies = new Float64Array(1 << 16);
let latencyCount = 0;
let protocolErrors = 0;
let closedCount = 0;
let onAllClosed;

class Stream {
  frames = 0;
  windowFrames = 0;
  /** Bytes of the current part's JPEG still to come; 0 while reading headers. */
  remaining = 0;
  timestampMs = 0;
  header = "";
  inBody = false;
  sawClosing = false;
  ended = false;
  closed = false;
  error = undefined;
  status = 0;
  contentType = "";
}

function onPart(stream) {
  stream.frames += 1;
  if (!measuring) return;
  stream.windowFrames += 1;
  if (latencyCount === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[latencyCount++] = now() - stream.timestampMs;
}

function protocolError(stream, message) {
  protocolErrors += 1;
  stream.error ??= message;
  stream.response?.destroy();
}

function parse(stream, chunk) {
  let i = 0;
  const length = chunk.length;
  while (i < length) {
    if (stream.inBody) {
      const take = Math.min(stream.remaining, length - i);
      stream.remaining -= take;
      i += take;
      if (stream.remaining === 0) {
        stream.inBody = false;
        onPart(stream);
      }
      continue;
    }
    if (stream.sawClosing) return; // nothing may follow the closing delimiter but the end
    // Headers are short: look at most 1 KiB ahead, plus what was left from the last chunk.
    const end = Math.min(length, i + 1024);
    const text = stream.header + chunk.toString("latin1", i, end);
    if (/^(\r\n)?--frame--/.test(text)) {
      stream.sawClosing = true;
      stream.header = "";
      return;
    }
    const blank = text.indexOf("\r\n\r\n");
    if (blank < 0) {
      if (end < length || text.length > 4096) {
        return protocolError(
          stream,
          `no end of part headers in ${JSON.stringify(text.slice(0, 80))}`,
        );
      }
      stream.header = text;
      return;
    }
    const head = text.slice(0, blank);
    i += blank + 4 - stream.header.length;
    stream.header = "";
    const contentLength = /\r?\nContent-Length: *(\d+)/i.exec(head);
    const timestamp = /\r?\nX-Timestamp: *([\d.]+)/i.exec(head);
    if (!/^(\r\n)?--frame\r\n/.test(head) || !contentLength || !timestamp) {
      return protocolError(stream, `bad part headers ${JSON.stringify(head)}`);
    }
    stream.remaining = Number(contentLength[1]);
    stream.timestampMs = Number(timestamp[1]) * 1000;
    stream.inBody = true;
    if (stream.remaining === 0) {
      stream.inBody = false;
      onPart(stream);
    }
  }
}

function open(stream) {
  return new Promise((resolve) => {
    const request = get(url, { agent: false }, (response) => {
      stream.response = response;
      stream.status = response.statusCode ?? 0;
      stream.contentType = String(response.headers["content-type"] ?? "");
      if (stream.status !== 200) stream.error = `HTTP ${stream.status}`;
      response.on("data", (chunk) => parse(stream, chunk));
      response.on("end", () => {
        stream.ended = true;
      });
      response.on("error", (error) => {
        stream.error ??= error.message;
      });
      response.on("aborted", () => {
        stream.error ??= "aborted";
      });
      response.on("close", () => {
        stream.closed = true;
        closedCount += 1;
        if (closedCount === streams.length) onAllClosed?.();
      });
      resolve();
    });
    request.on("error", (error) => {
      stream.error ??= error.message;
      if (!stream.closed) {
        stream.closed = true;
        closedCount += 1;
        if (closedCount === streams.length) onAllClosed?.();
      }
      resolve();
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolve when `done()` holds, checking every 20 ms; false when `timeoutMs` passes first. */
async function until(done, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Main

if (!url || !Number.isInteger(count) || count < 1) fail("BENCH_CLIENT needs url and clients");
const streams = Array.from({ length: count }, () => new Stream());
const readyDeadline = performance.now() + readyTimeoutMs;
for (let start = 0; start < count; start += BATCH) {
  await Promise.race([
    Promise.all(streams.slice(start, start + BATCH).map(open)),
    sleep(Math.max(0, readyDeadline - performance.now())),
  ]);
}
const failed = streams.filter((s) => s.error);
if (failed.length > 0) fail(`${failed.length}/${count} streams failed: ${failed[0].error}`);
const ready = await until(
  () => streams.every((s) => s.frames > 0),
  Math.max(0, readyDeadline - performance.now()),
);
if (!ready) {
  const without = streams.filter((s) => s.frames === 0).length;
  fail(`${without}/${count} streams had no frame within ${readyTimeoutMs} ms`);
}
const contentType = streams[0].contentType;

if (mode === "throughput") {
  await sleep(warmupMs);
  const before = readProc(serverPid);
  const ownBefore = process.cpuUsage();
  measuring = true;
  const started = performance.now();
  await sleep(measureMs);
  measuring = false;
  const durationS = (performance.now() - started) / 1000;
  const after = readProc(serverPid);
  const own = process.cpuUsage(ownBefore);
  const perClientFps = streams.map((s) => s.windowFrames / durationS).sort((a, b) => a - b);
  const sorted = latencies.subarray(0, latencyCount).sort();
  const pct = (p) =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  const delivered = streams.reduce((sum, s) => sum + s.windowFrames, 0);
  const broken = streams.filter((s) => s.error || s.closed).length;
  print({
    event: "result",
    clients: count,
    contentType,
    durationS,
    delivered,
    aggregateFps: delivered / durationS,
    minFps: perClientFps[0],
    medianFps: perClientFps[perClientFps.length >> 1],
    p50: pct(50),
    p99: pct(99),
    cpuMs: after.cpuMs - before.cpuMs,
    cpuSource: after.source,
    wallMs: after.at - before.at,
    rssBeforeKb: before.rssKb,
    rssAfterKb: after.rssKb,
    broken,
    protocolErrors,
    clientCpuPercent: (own.user + own.system) / 10 / (after.at - before.at),
  });
  for (const s of streams) s.response?.destroy();
  process.exit(0);
}

if (mode === "shutdown") {
  const allClosed = new Promise((resolve) => {
    onAllClosed = resolve;
    if (closedCount === streams.length) resolve();
  });
  print({ event: "ready", clients: count, contentType });
  await Promise.race([allClosed, sleep(closeTimeoutMs)]);
  const clean = streams.filter((s) => s.sawClosing && s.ended && !s.error).length;
  print({
    event: "result",
    clients: count,
    closingReceived: streams.filter((s) => s.sawClosing).length,
    cleanEnd: clean,
    endedWithoutClosing: streams.filter((s) => s.closed && !s.sawClosing).length,
    errors: streams.filter((s) => s.error).length,
    firstError: streams.find((s) => s.error)?.error,
    stillOpen: streams.filter((s) => !s.closed).length,
    protocolErrors,
  });
  for (const s of streams) s.response?.destroy();
  process.exit(0);
}

fail(`unknown mode ${mode}`);
