/**
 * `npm run bench:mjpeg`: labthings-ts's MJPEG stream against a bare node:http MJPEG server
 * pushing the very same pre-encoded JPEG bytes at 30 fps, in one run.
 *
 * 1. Frames: 30 distinct 640×480 JPEGs (gradient + noise), encoded once with sharp at the
 *    quality that gives ~50 KB, written to a temp dir both servers read.
 * 2. Servers, each a child process: `bench/mjpeg-labthings-server.ts` (a ThingServer from
 *    `dist/` with one `@mjpegStream()`; compiled with TypeScript's `transpileModule` into
 *    the temp dir and run with plain `node`, as in production: no tsx loader thread, no
 *    source-mapped stack traces) and `bench/mjpeg-bare-server.mjs` (node:http, same wire
 *    format, latest frame wins).
 * 3. Streaming: for N = 10, 100, 200 clients, the load client (`bench/mjpeg-client.mjs`,
 *    its own process so its CPU is not the server's) opens N streams, warms up, and
 *    records for 5 s: frames per client, latency (receive time − X-Timestamp), the
 *    server's CPU time (/proc/<pid>/task/<tid>/schedstat) and RSS. Servers alternate, order flipped each
 *    round; medians over the rounds.
 * 4. Shutdown: a fresh server per run with 10, 100, 500 open streams; time from SIGTERM
 *    to process exit, and how many clients got the closing delimiter.
 *
 * Prints a markdown table (ratios labthings-ts / bare, targets PASS/FAIL) and writes it to
 * `bench/results/mjpeg.md`. Exits 0 even when a target fails; 1 only if it could not run.
 * Every child is killed at the end, on error and on Ctrl-C; a watchdog bounds the run.
 * Knobs (env): BENCH_QUICK=1 for a smoke run; BENCH_MJPEG_CPU_PROF=DIR runs the
 * streaming labthings-ts server with `--cpu-prof --cpu-prof-dir=DIR`; BENCH_MJPEG_TSX=1
 * runs the labthings-ts server through `node --import tsx` instead of compiling it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { arch, availableParallelism, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import sharp from "sharp";
import ts from "typescript";
import {
  type Child,
  clockTicks,
  cpuModel,
  cpuProfileArgs,
  dateLine,
  EXIT_TIMEOUT_MS,
  int,
  KINDS,
  type Kind,
  killAll,
  kindsInOrder,
  LABEL,
  launch,
  loadLine,
  mb,
  median,
  memory,
  parseJson,
  progress,
  QUICK,
  type RunMeta,
  row,
  rule,
  runBench,
  sleep,
  startRun,
  terminate,
  waitForJson,
  watchdog,
  writeReport,
} from "./support.js";

// ---------------------------------------------------------------------------------------
// Configuration

const CPU_PROF_DIR = process.env.BENCH_MJPEG_CPU_PROF;
const VIA_TSX = process.env.BENCH_MJPEG_TSX === "1";
const FPS = 30;
const FRAME_COUNT = 30;
const FRAME_WIDTH = 640;
const FRAME_HEIGHT = 480;
const FRAME_TARGET_BYTES = 50_000;
const CLIENT_COUNTS = QUICK ? [10, 100] : [10, 100, 200];
const ROUNDS = QUICK ? 1 : 3;
const WARMUP_MS = QUICK ? 500 : 1000;
const MEASURE_MS = QUICK ? 2000 : 5000;
const SHUTDOWN_COUNTS = QUICK ? [10, 100] : [10, 100, 500];
const SHUTDOWN_ROUNDS = QUICK ? 1 : 2;
/** Streams run this long at full rate before SIGTERM, so shutdown meets busy sockets. */
const STREAM_BEFORE_TERM_MS = 500;
const READY_TIMEOUT_MS = 20_000;
/** The whole run is aborted past this (children killed, exit 1). */
const WATCHDOG_MS = 6 * 60_000;

const TARGETS = {
  cpuRatio: 1.25,
  minFps: FPS * 0.95,
  minFpsUpTo: 100,
  shutdown: [
    { streams: 100, ms: 250 },
    { streams: 500, ms: 1000 },
  ],
};

const LABTHINGS_SERVER = fileURLToPath(new URL("./mjpeg-labthings-server.ts", import.meta.url));
const BARE_SERVER = fileURLToPath(new URL("./mjpeg-bare-server.mjs", import.meta.url));
const CLIENT = fileURLToPath(new URL("./mjpeg-client.mjs", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/mjpeg.md", import.meta.url));
const DIST_INDEX = fileURLToPath(new URL("../dist/src/index.js", import.meta.url));

// ---------------------------------------------------------------------------------------
// The temp dir of the frames (and the compiled server script), removed on the way out

let tempDir: string | undefined;

function removeTempDir(): void {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  tempDir = undefined;
}
process.on("exit", removeTempDir);

// ---------------------------------------------------------------------------------------
// Frames

/** Gradient + noise, different for every `k`: compresses like a busy camera image. */
function rawFrame(k: number): Buffer {
  const pixels = Buffer.alloc(FRAME_WIDTH * FRAME_HEIGHT * 3);
  let seed = (k * 7919 + 1) >>> 0;
  const clamp = (v: number) => Math.max(0, Math.min(255, v));
  for (let y = 0; y < FRAME_HEIGHT; y++) {
    for (let x = 0; x < FRAME_WIDTH; x++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const noise = (((seed >>> 16) & 255) / 255 - 0.5) * 32;
      const i = (y * FRAME_WIDTH + x) * 3;
      pixels[i] = clamp(((x + y + k * 8) % 256) + noise);
      pixels[i + 1] = clamp((x * 255) / FRAME_WIDTH + noise);
      pixels[i + 2] = clamp((((y * 255) / FRAME_HEIGHT + k * 4) % 256) + noise);
    }
  }
  return pixels;
}

function encode(pixels: Buffer, quality: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width: FRAME_WIDTH, height: FRAME_HEIGHT, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}

/** Encode the frames once, at the quality whose first frame comes closest to ~50 KB. */
async function makeFrames(dir: string): Promise<{ frames: Buffer[]; quality: number }> {
  const first = rawFrame(0);
  let low = 20;
  let high = 98;
  while (high - low > 1) {
    const mid = (low + high) >> 1;
    if ((await encode(first, mid)).length <= FRAME_TARGET_BYTES) low = mid;
    else high = mid;
  }
  const [under, over] = [await encode(first, low), await encode(first, high)];
  const quality =
    FRAME_TARGET_BYTES - under.length <= over.length - FRAME_TARGET_BYTES ? low : high;
  const frames: Buffer[] = [];
  for (let k = 0; k < FRAME_COUNT; k++) {
    const jpeg = await encode(k === 0 ? first : rawFrame(k), quality);
    writeFileSync(join(dir, `frame-${String(k).padStart(3, "0")}.jpg`), jpeg);
    frames.push(jpeg);
  }
  return { frames, quality };
}

// ---------------------------------------------------------------------------------------
// Servers and the load client

/**
 * Compile the labthings-ts server script (decorators need it) to plain ESM in `dir`, its
 * import of the package pointed at the built `dist/`. Returns the file to run.
 */
function compileLabThingsServer(dir: string): string {
  const source = readFileSync(LABTHINGS_SERVER, "utf8");
  const { outputText } = ts.transpileModule(source, {
    fileName: LABTHINGS_SERVER,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  const specifier = '"../dist/src/index.js"';
  if (!outputText.includes(specifier)) {
    throw new Error(`${LABTHINGS_SERVER} no longer imports ${specifier}`);
  }
  const file = join(dir, "mjpeg-labthings-server.mjs");
  writeFileSync(
    file,
    outputText.replace(specifier, JSON.stringify(pathToFileURL(DIST_INDEX).href)),
  );
  return file;
}

let labthingsServerScript = LABTHINGS_SERVER;

interface Server {
  kind: Kind;
  child: Child;
  stream: string;
  pid: number;
}

async function startServer(kind: Kind, framesDir: string, cpuProfile = false): Promise<Server> {
  const args =
    kind === "labthings"
      ? [
          ...(cpuProfile ? cpuProfileArgs(CPU_PROF_DIR) : []),
          ...(VIA_TSX ? ["--import", "tsx", LABTHINGS_SERVER] : [labthingsServerScript]),
        ]
      : [BARE_SERVER];
  const child = launch(LABEL[kind], args, {
    BENCH_FRAMES_DIR: framesDir,
    BENCH_FPS: String(FPS),
  });
  const ready = await waitForJson(child, (r) => typeof r.stream === "string", READY_TIMEOUT_MS);
  return { kind, child, stream: String(ready.stream), pid: child.process.pid! };
}

function clientProcess(config: Record<string, unknown>): Child {
  return launch("load client", [CLIENT], { BENCH_CLIENT: JSON.stringify(config) });
}

async function clientResult(client: Child, timeoutMs: number): Promise<Record<string, unknown>> {
  const record = await waitForJson(
    client,
    (r) => r.event === "result" || r.event === "error",
    timeoutMs,
  );
  if (record.event === "error") throw new Error(`load client: ${String(record.message)}`);
  return record;
}

/** The first part of a stream: its headers and JPEG, to check both servers send the same. */
function firstPart(url: string): Promise<{ contentType: string; head: string; jpeg: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error(`no first part from ${url} within 5 s`));
    }, 5000);
    const request = get(url, { agent: false }, (response) => {
      let body = Buffer.alloc(0);
      response.on("data", (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]);
        const blank = body.indexOf("\r\n\r\n");
        if (blank < 0) return;
        const head = body.toString("latin1", 0, blank);
        const length = Number(/Content-Length: *(\d+)/i.exec(head)?.[1]);
        if (body.length < blank + 4 + length) return;
        clearTimeout(timer);
        response.destroy();
        resolve({
          contentType: String(response.headers["content-type"]),
          head,
          jpeg: body.subarray(blank + 4, blank + 4 + length),
        });
      });
    });
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function openFileLimit(): number {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = /Max open files\s+(\S+)/.exec(limits)?.[1];
    return soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft);
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------
// Measurements

interface StreamingRun {
  aggregateFps: number;
  minFps: number;
  medianFps: number;
  p50: number;
  p99: number;
  cpuPercent: number;
  cpuUsPerFrame: number;
  rssDeltaKb: number;
  broken: number;
  protocolErrors: number;
  clientCpuPercent: number;
  cpuSource: string;
}

async function streamingRun(server: Server, clients: number, clkTck: number) {
  const client = clientProcess({
    url: server.stream,
    clients,
    mode: "throughput",
    warmupMs: WARMUP_MS,
    measureMs: MEASURE_MS,
    serverPid: server.pid,
    clkTck,
    readyTimeoutMs: READY_TIMEOUT_MS,
  });
  try {
    const r = await clientResult(client, READY_TIMEOUT_MS + WARMUP_MS + MEASURE_MS + 10_000);
    const n = (key: string) => Number(r[key]);
    const run: StreamingRun = {
      aggregateFps: n("aggregateFps"),
      minFps: n("minFps"),
      medianFps: n("medianFps"),
      p50: n("p50"),
      p99: n("p99"),
      cpuPercent: (n("cpuMs") / n("wallMs")) * 100,
      cpuUsPerFrame: (n("cpuMs") * 1000) / n("delivered"),
      rssDeltaKb: n("rssAfterKb") - n("rssBeforeKb"),
      broken: n("broken"),
      protocolErrors: n("protocolErrors"),
      clientCpuPercent: n("clientCpuPercent"),
      cpuSource: String(r.cpuSource),
    };
    return run;
  } finally {
    await terminate(client);
  }
}

interface ShutdownRun {
  exitMs: number;
  code: number | null;
  killed: boolean;
  clients: number;
  closingReceived: number;
  cleanEnd: number;
  stillOpen: number;
  errors: number;
  firstError?: string;
  /** The server's own report: labthings-ts's ShutdownReport, or the bare server's. */
  serverReport: Record<string, unknown> | undefined;
}

async function shutdownRun(kind: Kind, framesDir: string, streams: number): Promise<ShutdownRun> {
  const server = await startServer(kind, framesDir);
  const client = clientProcess({
    url: server.stream,
    clients: streams,
    mode: "shutdown",
    readyTimeoutMs: READY_TIMEOUT_MS,
    closeTimeoutMs: EXIT_TIMEOUT_MS + 2000,
  });
  try {
    const ready = await waitForJson(
      client,
      (r) => r.event === "ready" || r.event === "error",
      READY_TIMEOUT_MS + 5000,
    );
    if (ready.event === "error") throw new Error(`load client: ${String(ready.message)}`);
    await sleep(STREAM_BEFORE_TERM_MS);
    const stopped = await terminate(server.child);
    const result = await clientResult(client, EXIT_TIMEOUT_MS + 5000);
    const serverReport = server.child.lines
      .map((line) => parseJson(line.text))
      .find((r) => r && typeof r.shutdown === "object");
    return {
      exitMs: stopped.ms,
      code: stopped.code,
      killed: stopped.killed,
      clients: streams,
      closingReceived: Number(result.closingReceived),
      cleanEnd: Number(result.cleanEnd),
      stillOpen: Number(result.stillOpen),
      errors: Number(result.errors),
      firstError: result.firstError as string | undefined,
      serverReport: serverReport?.shutdown as Record<string, unknown> | undefined,
    };
  } finally {
    await terminate(client);
    await terminate(server.child);
  }
}

// ---------------------------------------------------------------------------------------
// Statistics and formatting

const fixed = (digits: number) => (n: number) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
const f0 = fixed(0);
const f1 = fixed(1);
const signedMb = (kb: number) => (kb >= 0 ? "+" : "") + mb(kb);
const ratio = (a: number, b: number) =>
  Number.isFinite(a / b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–";

/** Pad every markdown table's columns to one width (as biome formats markdown). */
function alignTables(markdown: string): string {
  const lines = markdown.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    if (!lines[i]!.startsWith("|")) {
      out.push(lines[i++]!);
      continue;
    }
    const block: string[][] = [];
    while (i < lines.length && lines[i]!.startsWith("|")) {
      block.push(
        lines[i++]!.trim()
          .slice(1, -1)
          .split(/(?<!\\)\|/)
          .map((cell) => cell.trim()),
      );
    }
    const width = (cell: string) => [...cell].length;
    const widths = block[0]!.map((_, c) =>
      Math.max(
        3,
        ...block.map((cells) => (/^-+$/.test(cells[c] ?? "") ? 3 : width(cells[c] ?? ""))),
      ),
    );
    for (const cells of block) {
      const padded = widths.map((w, c) => {
        const cell = cells[c] ?? "";
        return /^-+$/.test(cell) ? "-".repeat(w) : cell + " ".repeat(w - width(cell));
      });
      out.push(`| ${padded.join(" | ")} |`);
    }
  }
  return out.join("\n");
}
const verdict = (ok: boolean) => (ok ? "**PASS**" : "**FAIL**");

interface Results {
  frames: { count: number; quality: number; meanBytes: number; minBytes: number; maxBytes: number };
  wire: string[];
  streaming: Map<number, Record<Kind, StreamingRun[]>>;
  memory: Record<Kind, { startKb: number; endKb: number; peakKb: number }>;
  shutdown: Map<number, Record<Kind, ShutdownRun[]>>;
  openFiles: number;
  meta: RunMeta;
}

function report(results: Results): string {
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  push("# MJPEG benchmark: labthings-ts vs bare node:http", "");
  push(dateLine());
  push(
    `- Node ${process.version} on ${platform()}/${arch()}, ${availableParallelism()} CPUs (${cpuModel()}); open-file limit ${results.openFiles}`,
  );
  push(loadLine(results.meta));
  push(
    "- **All figures are medians on a shared 2-core machine** (other work may be running; server, load client and bench share the cores). Read the ratios more than the absolute numbers.",
  );
  const { frames } = results;
  const allRuns = [...results.streaming.values()].flatMap((r) => [...r.labthings, ...r.bare]);
  push(
    `- Frames: ${frames.count} distinct ${FRAME_WIDTH}×${FRAME_HEIGHT} JPEGs (sharp, quality ${frames.quality}), ${int(frames.meanBytes)} B mean (${int(frames.minBytes)}–${int(frames.maxBytes)}), encoded once; both servers push the same bytes at ${FPS} fps (fixed-rate clock).`,
  );
  push(
    "- labthings-ts = `bench/mjpeg-labthings-server.ts`: `ThingServer` from `dist/` with one `@mjpegStream()` (" +
      (VIA_TSX
        ? "run with `node --import tsx`"
        : "compiled with TypeScript's `transpileModule`, run with plain `node` as in production") +
      "); node:http = `bench/mjpeg-bare-server.mjs`, same wire format, one Buffer per part, latest frame wins on 'drain'.",
  );
  push(
    "- Load client = `bench/mjpeg-client.mjs` in its own process (`http.get`, agent: false), parsing parts by Content-Length; latency = receive time of the whole part − its X-Timestamp. Server CPU = run time of all the server process's threads over the window, from `/proc/<pid>/task/<tid>/schedstat` (ns; falls back to `/proc/<pid>/stat` ticks); used here: " +
      [...new Set(allRuns.map((r) => r.cpuSource))].join(", ") +
      ".",
  );
  push(`- Wire check: ${results.wire.join("; ")}`, "");

  push(`## Streaming: N clients × ${FPS} fps`, "");
  push(
    `${ROUNDS} rounds per server and N, alternating (order flipped each round); per run a ${WARMUP_MS / 1000} s warm-up then a ${MEASURE_MS / 1000} s window. Ratio = labthings-ts / node:http (medians). On this machine CPU per frame varies about ±15 % from run to run for either server (see the per-run table), so a ratio near 1.25 can land on either side of the target.`,
    "",
  );
  push(
    row(["clients", "metric", "labthings-ts", "node:http", "labthings-ts / node:http"]),
    rule(5),
  );
  /** Each metric: name, value of a run, format, and how the two medians compare. */
  const metrics: [
    string,
    (r: StreamingRun) => number,
    (n: number) => string,
    (lab: number, bare: number) => string,
  ][] = [
    ["aggregate frames/s", (r) => r.aggregateFps, int, ratio],
    ["per-client fps, min", (r) => r.minFps, f1, ratio],
    ["per-client fps, median", (r) => r.medianFps, f1, ratio],
    ["latency p50, ms", (r) => r.p50, f1, ratio],
    ["latency p99, ms", (r) => r.p99, f1, ratio],
    ["server CPU, % of one core", (r) => r.cpuPercent, f1, ratio],
    ["**server CPU per delivered frame, µs**", (r) => r.cpuUsPerFrame, f1, ratio],
    // Small deltas of either sign: a ratio would mean nothing, the difference does.
    [
      "server RSS change during the window, MB",
      (r) => r.rssDeltaKb,
      signedMb,
      (lab, bare) => `${signedMb(lab - bare)} MB`,
    ],
  ];
  for (const [clients, runs] of results.streaming) {
    for (const [name, pick, format, compare] of metrics) {
      const lab = median(runs.labthings.map(pick));
      const bare = median(runs.bare.map(pick));
      push(row([clients, name, format(lab), format(bare), compare(lab, bare)]));
    }
  }
  push("");
  push("Per run (in run order), labthings-ts | node:http:", "");
  push(
    row(["clients", "frames/s", "min fps", "p99 ms", "CPU µs/frame", "load-client CPU %"]),
    rule(6),
  );
  for (const [clients, runs] of results.streaming) {
    const each = (pick: (r: StreamingRun) => number, format: (n: number) => string) =>
      `${runs.labthings.map((r) => format(pick(r))).join(", ")} \\| ${runs.bare.map((r) => format(pick(r))).join(", ")}`;
    push(
      row([
        clients,
        each((r) => r.aggregateFps, int),
        each((r) => r.minFps, f1),
        each((r) => r.p99, f1),
        each((r) => r.cpuUsPerFrame, f1),
        each((r) => r.clientCpuPercent, f0),
      ]),
    );
  }
  const broken = allRuns.reduce((sum, r) => sum + r.broken + r.protocolErrors, 0);
  if (broken > 0) push("", `⚠ ${broken} streams broke or sent malformed parts during a window.`);
  push("");

  push("## Server memory over the streaming runs", "");
  push(row(["server", "RSS at start, MB", "RSS at end, MB", "growth, MB", "peak RSS, MB"]));
  push(rule(5));
  for (const kind of KINDS) {
    const m = results.memory[kind];
    push(
      row([LABEL[kind], mb(m.startKb), mb(m.endKb), signedMb(m.endKb - m.startKb), mb(m.peakKb)]),
    );
  }
  const lm = results.memory.labthings;
  const bm = results.memory.bare;
  push(
    row([
      "ratio",
      ratio(lm.startKb, bm.startKb),
      ratio(lm.endKb, bm.endKb),
      "",
      ratio(lm.peakKb, bm.peakKb),
    ]),
    "",
  );

  push("## Shutdown: SIGTERM → process exit with N open streams", "");
  push(
    `${SHUTDOWN_ROUNDS} rounds per server and N, each a fresh server; streams run ${STREAM_BEFORE_TERM_MS} ms at full rate before SIGTERM. Time = bench's \`kill()\` to the child's exit event. "Closing delimiter" = clients that read \`--frame--\` and then a clean end of body (summed over the rounds).`,
    "",
  );
  push(
    row(["streams", "metric", "labthings-ts", "node:http", "labthings-ts / node:http"]),
    rule(5),
  );
  for (const [streams, runs] of results.shutdown) {
    const lab = median(runs.labthings.map((r) => r.exitMs));
    const bare = median(runs.bare.map((r) => r.exitMs));
    push(row([streams, "**SIGTERM → exit, ms**", f1(lab), f1(bare), ratio(lab, bare)]));
    const got = (rs: ShutdownRun[]) =>
      `${rs.reduce((s, r) => s + r.cleanEnd, 0)} / ${rs.reduce((s, r) => s + r.clients, 0)}`;
    push(row([streams, "closing delimiter + clean end", got(runs.labthings), got(runs.bare), ""]));
    const codes = (rs: ShutdownRun[]) => rs.map((r) => (r.killed ? "killed" : r.code)).join(", ");
    push(row([streams, "exit codes", codes(runs.labthings), codes(runs.bare), ""]));
    push(
      row([
        streams,
        "server's own shutdown duration, ms",
        runs.labthings.map((r) => f1(Number(r.serverReport?.durationMs))).join(", "),
        runs.bare.map((r) => f1(Number(r.serverReport?.durationMs))).join(", "),
        "",
      ]),
    );
  }
  push("");

  push("## Targets (labthings-ts)", "");
  push(row(["target", "measured", "result"]), rule(3));
  for (const [clients, runs] of results.streaming) {
    const lab = median(runs.labthings.map((r) => r.cpuUsPerFrame));
    const bare = median(runs.bare.map((r) => r.cpuUsPerFrame));
    push(
      row([
        `CPU per delivered frame ≤ ${TARGETS.cpuRatio} × bare, ${clients} clients`,
        `${f1(lab)} vs ${f1(bare)} µs = ${ratio(lab, bare)}`,
        verdict(lab <= TARGETS.cpuRatio * bare),
      ]),
    );
  }
  for (const [clients, runs] of results.streaming) {
    if (clients > TARGETS.minFpsUpTo) continue;
    const mins = runs.labthings.map((r) => r.minFps);
    const bareMin = median(runs.bare.map((r) => r.minFps));
    push(
      row([
        `every client ≥ ${TARGETS.minFps} fps (95 % of ${FPS}), ${clients} clients`,
        `slowest client ${f1(median(mins))} fps (median of rounds; worst round ${f1(Math.min(...mins))}; bare ${f1(bareMin)})`,
        verdict(median(mins) >= TARGETS.minFps),
      ]),
    );
  }
  for (const { streams, ms } of TARGETS.shutdown) {
    const runs = results.shutdown.get(streams);
    if (!runs) continue;
    const lab = median(runs.labthings.map((r) => r.exitMs));
    push(
      row([
        `shutdown < ${ms} ms with ${streams} streams`,
        `${f1(lab)} ms (bare ${f1(median(runs.bare.map((r) => r.exitMs)))} ms)`,
        verdict(lab < ms),
      ]),
    );
  }
  for (const [streams, runs] of results.shutdown) {
    const got = runs.labthings.reduce((s, r) => s + r.cleanEnd, 0);
    const total = runs.labthings.reduce((s, r) => s + r.clients, 0);
    const exits = runs.labthings.every((r) => r.code === 0 && !r.killed);
    push(
      row([
        `every client gets the closing delimiter, exit 0, ${streams} streams`,
        `${got} / ${total}; exit codes ${runs.labthings.map((r) => (r.killed ? "killed" : r.code)).join(", ")}`,
        verdict(got === total && exits),
      ]),
    );
  }
  push("");
  return alignTables(lines.join("\n"));
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const run = startRun();
  const clkTck = clockTicks();
  const openFiles = openFileLimit();
  // Each side of N streams holds N sockets (client and server are separate processes).
  const shutdownCounts = SHUTDOWN_COUNTS.filter((n) => !(n + 100 > openFiles));
  if (shutdownCounts.length < SHUTDOWN_COUNTS.length) {
    console.error(
      `open-file limit ${openFiles} is too low for ${SHUTDOWN_COUNTS.at(-1)} streams; raise it with ulimit -n. Skipping larger counts.`,
    );
  }

  const framesDir = mkdtempSync(join(tmpdir(), "labthings-mjpeg-bench-"));
  tempDir = framesDir;
  try {
    progress("encoding frames");
    const { frames, quality } = await makeFrames(framesDir);
    const sizes = frames.map((f) => f.length);
    if (!VIA_TSX) labthingsServerScript = compileLabThingsServer(framesDir);

    progress("starting servers");
    const servers = {} as Record<Kind, Server>;
    for (const kind of KINDS) {
      servers[kind] = await startServer(kind, framesDir, kind === "labthings");
    }
    await sleep(300);
    const startMemory = {
      labthings: memory(servers.labthings.pid),
      bare: memory(servers.bare.pid),
    };

    // Both servers must send the same thing: same headers, JPEG bytes equal to a frame file.
    const wire: string[] = [];
    const parts = {} as Record<Kind, Awaited<ReturnType<typeof firstPart>>>;
    for (const kind of KINDS) parts[kind] = await firstPart(servers[kind].stream);
    const names = (head: string) =>
      head
        .split("\r\n")
        .map((line) => line.split(":")[0])
        .join(",");
    for (const kind of KINDS) {
      const part = parts[kind];
      if (!frames.some((frame) => frame.equals(part.jpeg))) {
        throw new Error(`${LABEL[kind]}'s first part is not one of the frames`);
      }
    }
    if (parts.labthings.contentType !== parts.bare.contentType) {
      throw new Error(
        `content types differ: ${parts.labthings.contentType} vs ${parts.bare.contentType}`,
      );
    }
    wire.push(`both answer \`${parts.bare.contentType}\``);
    wire.push(
      names(parts.labthings.head) === names(parts.bare.head)
        ? `same part headers (${names(parts.bare.head).replaceAll(",", ", ")})`
        : `part headers differ: ${names(parts.labthings.head)} vs ${names(parts.bare.head)}`,
    );
    wire.push("JPEG bytes identical to the frame files");

    const streaming = new Map<number, Record<Kind, StreamingRun[]>>();
    for (const clients of CLIENT_COUNTS) {
      const runs: Record<Kind, StreamingRun[]> = { labthings: [], bare: [] };
      streaming.set(clients, runs);
      for (let round = 0; round < ROUNDS; round++) {
        for (const kind of kindsInOrder(round)) {
          progress(`streaming: ${clients} clients, round ${round + 1}/${ROUNDS}, ${LABEL[kind]}`);
          runs[kind].push(await streamingRun(servers[kind], clients, clkTck));
          // Let the server notice the closed sockets before the next run.
          await sleep(300);
        }
      }
    }
    const endMemory = {
      labthings: memory(servers.labthings.pid),
      bare: memory(servers.bare.pid),
    };
    for (const kind of KINDS) {
      const stopped = await terminate(servers[kind].child);
      if (stopped.code !== 0)
        console.error(`${LABEL[kind]} exited ${stopped.code} after streaming`);
    }

    const shutdown = new Map<number, Record<Kind, ShutdownRun[]>>();
    for (const streams of shutdownCounts) {
      const runs: Record<Kind, ShutdownRun[]> = { labthings: [], bare: [] };
      shutdown.set(streams, runs);
      for (let round = 0; round < SHUTDOWN_ROUNDS; round++) {
        for (const kind of kindsInOrder(round)) {
          progress(
            `shutdown: ${streams} streams, round ${round + 1}/${SHUTDOWN_ROUNDS}, ${LABEL[kind]}`,
          );
          runs[kind].push(await shutdownRun(kind, framesDir, streams));
        }
      }
    }

    const markdown = report({
      frames: {
        count: frames.length,
        quality,
        meanBytes: sizes.reduce((a, b) => a + b, 0) / sizes.length,
        minBytes: Math.min(...sizes),
        maxBytes: Math.max(...sizes),
      },
      wire,
      streaming,
      memory: {
        labthings: {
          startKb: startMemory.labthings.rssKb,
          endKb: endMemory.labthings.rssKb,
          peakKb: endMemory.labthings.hwmKb,
        },
        bare: {
          startKb: startMemory.bare.rssKb,
          endKb: endMemory.bare.rssKb,
          peakKb: endMemory.bare.hwmKb,
        },
      },
      shutdown,
      openFiles,
      meta: run(),
    });
    writeReport(RESULTS, markdown);
  } finally {
    killAll();
    removeTempDir();
  }
}

watchdog(WATCHDOG_MS, `bench:mjpeg: still running after ${WATCHDOG_MS / 1000} s, giving up`);
runBench("mjpeg", main, removeTempDir);
