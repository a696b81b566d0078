/**
 * `npm run bench:http`: property GET throughput and startup time of the real, built CLI,
 * each against a bare Node baseline measured in the same run.
 *
 * 1. Startup: spawn `labthings-ts serve` N times, time spawn → "listening on" log line
 *    (and read the process's own `startupMs`), SIGTERM, wait for exit. Baseline: a
 *    `node -e` one-liner that listens with `node:http`, timed the same way.
 * 2. Throughput: one labthings-ts child and one bare `node:http` child
 *    (`bench/baseline-server.mjs`) serving the very same bytes; autocannon drives each
 *    endpoint, alternating the two servers round by round (order flipped every round);
 *    medians over the rounds.
 *
 * Prints a markdown table and writes it to `bench/results/http.md`. Every child is killed
 * at the end, on error and on Ctrl-C. Knobs (env): BENCH_QUICK=1 for a smoke run.
 */
import { fileURLToPath } from "node:url";
import {
  type Child,
  environmentLines,
  int,
  kindsInOrder,
  launch,
  median,
  ms,
  packageVersion,
  parseJson,
  progress,
  QUICK,
  type RunMeta,
  row,
  rule,
  runBench,
  runLoad,
  startRun,
  terminate,
  waitForLine,
  writeReport,
} from "./support.js";

// ---------------------------------------------------------------------------------------
// Configuration

const CONNECTIONS = 10;
const PIPELINING = 1;
const STARTUP_RUNS = QUICK ? 2 : 7;
const WARMUP_SECONDS = QUICK ? 1 : 2;
/** Endpoints, each with its own number of rounds (per server) and seconds per round. */
const ENDPOINTS = [
  { path: "/camera/exposureTime", what: "property (JSON number)", rounds: 5, seconds: 3 },
  { path: "/stage/position", what: "property (JSON object)", rounds: 3, seconds: 2 },
  { path: "/camera/", what: "Thing Description", rounds: 3, seconds: 2 },
].map((e) => (QUICK ? { ...e, rounds: 1, seconds: 1 } : e));

const CLI = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
const BASELINE = fileURLToPath(new URL("./baseline-server.mjs", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/http.md", import.meta.url));
const SERVE_ARGS = ["serve", "--port", "0", "--log-format", "json", "--log-level", "info"];
const BARE_STARTUP_SCRIPT =
  "require('http').createServer().listen(0,'127.0.0.1',()=>{console.log('listening');})";
const READY_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------
// The servers

interface Started {
  child: Child;
  wallMs: number;
}

async function startLabThings(): Promise<Started & { url: string; startupMs: number }> {
  const t0 = performance.now();
  const child = launch("labthings-ts", [CLI, ...SERVE_ARGS]);
  const { value, atMs } = await waitForLine(
    child,
    (line) => {
      const record = parseJson(line);
      return typeof record?.msg === "string" && record.msg.startsWith("listening on")
        ? record
        : undefined;
    },
    READY_TIMEOUT_MS,
  );
  if (typeof value.url !== "string") throw new Error(`no url in ${JSON.stringify(value)}`);
  return {
    child,
    wallMs: atMs - t0,
    url: value.url.replace(/\/+$/, ""),
    startupMs: Number(value.startupMs),
  };
}

async function startBareStartup(): Promise<Started> {
  const t0 = performance.now();
  const child = launch("bare node:http", ["-e", BARE_STARTUP_SCRIPT]);
  const { atMs } = await waitForLine(
    child,
    (line) => (line.trim() === "listening" ? true : undefined),
    READY_TIMEOUT_MS,
  );
  return { child, wallMs: atMs - t0 };
}

async function startBaseline(routes: Record<string, Route>): Promise<Started & { url: string }> {
  const t0 = performance.now();
  const child = launch("node:http baseline", [BASELINE], { BENCH_ROUTES: JSON.stringify(routes) });
  const { value, atMs } = await waitForLine(
    child,
    (line) => {
      const port = parseJson(line)?.port;
      return typeof port === "number" ? port : undefined;
    },
    READY_TIMEOUT_MS,
  );
  return { child, wallMs: atMs - t0, url: `http://127.0.0.1:${value}` };
}

// ---------------------------------------------------------------------------------------
// Measurements

interface Route {
  contentType: string;
  body: string;
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** autocannon's own histogram percentiles: whole milliseconds only. */
  acP50: number;
  acP99: number;
  errors: number;
  non2xx: number;
}

/** One autocannon run; latency percentiles from every 2xx response time (sub-ms resolution). */
async function drive(url: string, seconds: number): Promise<Run> {
  const { run, result } = await runLoad(
    { url, connections: CONNECTIONS, pipelining: PIPELINING, duration: seconds },
    { expected: (status) => status >= 200 && status <= 299 },
  );
  return {
    rps: result["2xx"] / result.duration,
    p50: run.p50,
    p99: run.p99,
    acP50: result.latency.p50,
    acP99: result.latency.p99,
    errors: run.errors,
    non2xx: result.non2xx,
  };
}

interface StartupRow {
  wall: number[];
  self: number[];
  stop: number[];
  unclean: number;
}

async function measureStartup(): Promise<{ labthings: StartupRow; bare: StartupRow }> {
  const labthings: StartupRow = { wall: [], self: [], stop: [], unclean: 0 };
  const bare: StartupRow = { wall: [], self: [], stop: [], unclean: 0 };
  const once = {
    labthings: async () => {
      const started = await startLabThings();
      const stopped = await terminate(started.child);
      labthings.wall.push(started.wallMs);
      labthings.self.push(started.startupMs);
      labthings.stop.push(stopped.ms);
      if (stopped.code !== 0 || stopped.killed) labthings.unclean++;
    },
    bare: async () => {
      const started = await startBareStartup();
      const stopped = await terminate(started.child);
      bare.wall.push(started.wallMs);
      bare.stop.push(stopped.ms);
    },
  };
  for (let i = 0; i < STARTUP_RUNS; i++) {
    progress(`startup ${i + 1}/${STARTUP_RUNS}`);
    // Alternate which goes first, so drift on the machine hits both alike.
    for (const kind of kindsInOrder(i)) await once[kind]();
  }
  return { labthings, bare };
}

async function snapshot(url: string): Promise<Route & { status: number }> {
  const response = await fetch(url);
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    body: await response.text(),
  };
}

interface EndpointResult {
  path: string;
  what: string;
  bytes: number;
  rounds: number;
  seconds: number;
  labthings: Run[];
  bare: Run[];
}

async function measureThroughput(labthingsUrl: string, bareUrl: string): Promise<EndpointResult[]> {
  const results: EndpointResult[] = [];
  for (const endpoint of ENDPOINTS) {
    const targets = {
      labthings: labthingsUrl + endpoint.path,
      bare: bareUrl + endpoint.path,
    };
    const bytes = Buffer.byteLength((await snapshot(targets.labthings)).body);
    // JIT warm-up of both servers (and of the client) on this path; not recorded.
    progress(`GET ${endpoint.path}: warm-up`);
    await drive(targets.labthings, WARMUP_SECONDS);
    await drive(targets.bare, WARMUP_SECONDS);
    const result: EndpointResult = { ...endpoint, bytes, labthings: [], bare: [] };
    for (let round = 0; round < endpoint.rounds; round++) {
      for (const which of kindsInOrder(round)) {
        progress(`GET ${endpoint.path}: round ${round + 1}/${endpoint.rounds}, ${which}`);
        result[which].push(await drive(targets[which], endpoint.seconds));
      }
    }
    results.push(result);
  }
  return results;
}

// ---------------------------------------------------------------------------------------
// Report

function report(
  startup: { labthings: StartupRow; bare: StartupRow },
  endpoints: EndpointResult[],
  meta: RunMeta,
): string {
  const lines: string[] = [];
  lines.push("# HTTP benchmark: labthings-ts vs bare node:http", "");
  lines.push(...environmentLines(meta));
  lines.push(
    `- **All figures are medians on a shared, noisy 2-core machine**: the autocannon client runs in the bench process on the same cores as the server. Read the ratios, not the absolute numbers.`,
  );
  lines.push(
    `- labthings-ts = the built CLI, \`node dist/src/cli/main.js ${SERVE_ARGS.join(" ")}\` (simulated microscope); node:http = \`bench/baseline-server.mjs\` answering the same paths with the same bytes and content type.`,
  );
  lines.push("");

  lines.push("## GET throughput on loopback", "");
  lines.push(
    `autocannon ${packageVersion("autocannon")}, ${CONNECTIONS} connections, pipelining ${PIPELINING}; the two servers alternate round by round (order flipped each round) after a ${WARMUP_SECONDS} s warm-up each. Latency percentiles are computed from every response time (autocannon's own histogram only has whole milliseconds). Ratio = labthings-ts median / node:http median.`,
    "",
  );
  lines.push(
    row([
      "endpoint",
      "body",
      "rounds × s",
      "labthings-ts req/s",
      "node:http req/s",
      "ratio",
      "labthings-ts p50 / p99 ms",
      "node:http p50 / p99 ms",
    ]),
    rule(8),
  );
  for (const e of endpoints) {
    const med = (runs: Run[], key: keyof Run) => median(runs.map((r) => r[key]));
    lines.push(
      row([
        `GET ${e.path} (${e.what})`,
        `${e.bytes} B`,
        `${e.rounds} × ${e.seconds}`,
        int(med(e.labthings, "rps")),
        int(med(e.bare, "rps")),
        `**${(med(e.labthings, "rps") / med(e.bare, "rps")).toFixed(2)}**`,
        `${ms(med(e.labthings, "p50"))} / ${ms(med(e.labthings, "p99"))}`,
        `${ms(med(e.bare, "p50"))} / ${ms(med(e.bare, "p99"))}`,
      ]),
    );
  }
  lines.push("", "Per round (req/s, in run order):", "");
  lines.push(row(["endpoint", "labthings-ts", "node:http", "errors / non-2xx"]), rule(4));
  for (const e of endpoints) {
    const all = [...e.labthings, ...e.bare];
    lines.push(
      row([
        `GET ${e.path}`,
        e.labthings.map((r) => int(r.rps)).join(", "),
        e.bare.map((r) => int(r.rps)).join(", "),
        `${all.reduce((n, r) => n + r.errors, 0)} / ${all.reduce((n, r) => n + r.non2xx, 0)}`,
      ]),
    );
  }
  lines.push("");

  lines.push("## Startup: `serve` → listening", "");
  lines.push(
    `${STARTUP_RUNS} runs each, alternating; wall time from \`spawn()\` until the ready line reaches the bench on stdout (includes starting node itself). Baseline: \`node -e "${BARE_STARTUP_SCRIPT}"\`.`,
    "",
  );
  lines.push(row(["measure", "median ms", "min ms", "max ms"]), rule(4));
  const stats = (label: string, values: number[]) =>
    row([label, ms(median(values)), ms(Math.min(...values)), ms(Math.max(...values))]);
  lines.push(stats('labthings-ts: spawn → "listening on" (wall)', startup.labthings.wall));
  lines.push(
    stats("labthings-ts: own `startupMs` (serve() entry → listening)", startup.labthings.self),
  );
  lines.push(stats('bare node:http: spawn → "listening" (wall)', startup.bare.wall));
  lines.push(
    row([
      "**difference** (labthings-ts − bare, medians of wall time)",
      `**${ms(median(startup.labthings.wall) - median(startup.bare.wall))}**`,
      "",
      "",
    ]),
  );
  lines.push(
    stats("labthings-ts: SIGTERM (sent as soon as it listens) → exit", startup.labthings.stop),
  );
  lines.push(stats("bare node:http: SIGTERM → exit", startup.bare.stop));
  if (startup.labthings.unclean > 0) {
    lines.push("", `⚠ ${startup.labthings.unclean} labthings-ts runs did not exit 0 on SIGTERM.`);
  }
  lines.push("");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const run = startRun();

  const startup = await measureStartup();

  const labthings = await startLabThings();
  const routes: Record<string, Route> = {};
  for (const { path } of ENDPOINTS) {
    const { status, ...route } = await snapshot(labthings.url + path);
    if (status !== 200) throw new Error(`GET ${path} on labthings-ts answered ${status}`);
    routes[path] = route;
  }
  const baseline = await startBaseline(routes);
  for (const { path } of ENDPOINTS) {
    const got = await snapshot(baseline.url + path);
    const want = routes[path]!;
    if (got.status !== 200 || got.body !== want.body || got.contentType !== want.contentType) {
      throw new Error(`baseline differs from labthings-ts on GET ${path}`);
    }
  }

  const endpoints = await measureThroughput(labthings.url, baseline.url);
  const stoppedLabThings = await terminate(labthings.child);
  await terminate(baseline.child);
  if (stoppedLabThings.code !== 0) {
    console.error(`labthings-ts exited ${stoppedLabThings.code} after the load test`);
  }

  writeReport(RESULTS, report(startup, endpoints, run()));
}

// fetch's keep-alive pool and autocannon may hold handles: runBench exits when done.
runBench("http", main);
