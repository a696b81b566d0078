/**
 * `npm run bench:actions`: what an action invocation costs over HTTP, and whether the
 * invocation store stays bounded.
 *
 * One server child, `bench/actions-server.ts` (a ThingServer from `dist/`, action
 * retention 2 s, run with `node --import tsx --expose-gc`), serving a Thing `bench` with a
 * no-op action, a synchronous no-op, a sleeping action (async and synchronous variants) and
 * a trivial property.
 *
 * 1. Throughput: autocannon drives POST /bench/noop (201), POST /bench/noopSync (204) and,
 *    as the baseline in the same run, GET /bench/value; the three alternate round by round
 *    (order rotated each round) after a warm-up; medians over the rounds, latency
 *    percentiles from every response time, server CPU per request from /proc/<pid>/stat.
 * 2. Memory: after the load, GET /action_invocations/ must list ≤ 1000 invocations (the
 *    retention cap); the server's RSS (/proc/<pid>/status) and V8 heap are read before the
 *    load, right after it, once retention has expired (then watched while the server idles
 *    for 10 s), and after a forced GC.
 * 3. Latency under concurrency: (a) the synchronous sleeping action (POST answers when the
 *    action is done) with 100 invocations kept in flight, overhead = POST round trip − sleep;
 *    (b) a no-op's POST → `completed` (POST, then GET its status until completed, tight
 *    polling) while 100 long asynchronous invocations are running. Each against an idle
 *    baseline measured in the same run, and a paced property GET as the reference for the
 *    server CPU each request costs at such low rates.
 *
 * Prints a markdown table and writes it to `bench/results/actions.md`. Every child is killed
 * at the end, on error and on Ctrl-C. Knobs (env): BENCH_QUICK=1 for a smoke run,
 * BENCH_ACTIONS_CPU_PROF=<dir> to run the server child with `--cpu-prof` into <dir>.
 */
import { Agent } from "node:http";
import { fileURLToPath } from "node:url";
import {
  cpuMs,
  cpuProfileArgs,
  driveEndpoint,
  type Endpoint,
  environmentLines,
  failuresCell,
  int,
  type LoadRun,
  launchServer,
  mb,
  median,
  memory,
  ms,
  packageVersion,
  parseJson,
  progress,
  QUICK,
  type RunMeta,
  request,
  row,
  rule,
  runBench,
  type ServerChild,
  sleep,
  startRun,
  summary,
  terminate,
  waitForLine,
  writeReport,
} from "./support.js";

// ---------------------------------------------------------------------------------------
// Configuration

const CPU_PROF_DIR = process.env.BENCH_ACTIONS_CPU_PROF;
const CONNECTIONS = 10;
const PIPELINING = 1;
const WARMUP_SECONDS = QUICK ? 1 : 2;
const ROUNDS = QUICK ? 1 : 3;
const ROUND_SECONDS = QUICK ? 1 : 3;
/** Must match `actionRetentionMs` in bench/actions-server.ts. */
const RETENTION_MS = 2000;
/** ThingServer's default `maxRetainedInvocations`. */
const MAX_RETAINED = 1000;
/** Part 3. */
const IN_FLIGHT = 100;
const LONG_SLEEP_MS = 1000;
const IN_FLIGHT_SECONDS = QUICK ? 2 : 6;
const IDLE_SLEEP_MS = 20;
/** The paced GET reference: one request, then this pause. */
const PACE_MS = 20;
const IDLE_SECONDS = QUICK ? 1 : 2;
const PROBE_SECONDS = QUICK ? 2 : 4;
const POLL_LIMIT_MS = 2000;
/** After retention expiry: how long RSS is watched, idle, before a GC is forced. */
const IDLE_WATCH_MS = QUICK ? 2000 : 10_000;

const SERVER = fileURLToPath(new URL("./actions-server.ts", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/actions.md", import.meta.url));
const READY_TIMEOUT_MS = 15_000;

interface Target extends Endpoint {
  key: "noop" | "noopSync" | "get";
  label: string;
  method: "GET" | "POST";
}
const TARGETS: readonly Target[] = [
  {
    key: "noop",
    label: "POST /bench/noop (async no-op)",
    method: "POST",
    path: "/bench/noop",
    status: 201,
  },
  {
    key: "noopSync",
    label: "POST /bench/noopSync (synchronous no-op)",
    method: "POST",
    path: "/bench/noopSync",
    status: 204,
  },
  {
    key: "get",
    label: "GET /bench/value (property, baseline)",
    method: "GET",
    path: "/bench/value",
    status: 200,
  },
];

// ---------------------------------------------------------------------------------------
// The server

type Server = ServerChild;

function startServer(): Promise<Server> {
  const args = [...cpuProfileArgs(CPU_PROF_DIR), "--expose-gc", "--import", "tsx", SERVER];
  return launchServer("actions server", args, {}, READY_TIMEOUT_MS);
}

// ---------------------------------------------------------------------------------------
// Plain requests (parts 2 and 3) share a keep-alive agent with enough sockets for every
// request in flight.

const agent = new Agent({ keepAlive: true, maxSockets: 4 * IN_FLIGHT });

async function getJson<T>(url: string): Promise<T> {
  const answer = await request(url, "GET", { agent });
  if (answer.status !== 200) throw new Error(`GET ${url}: ${answer.status} ${answer.body}`);
  return JSON.parse(answer.body) as T;
}

// ---------------------------------------------------------------------------------------
// Part 1: throughput

/** One autocannon run of one target. */
type Run = LoadRun;

function drive(server: Server, target: Target, seconds: number): Promise<Run> {
  return driveEndpoint(server, target, {
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration: seconds,
  });
}

interface Throughput {
  runs: Record<Target["key"], Run[]>;
  /** GET /action_invocations/ length right after each invoking round. */
  retained: number[];
}

async function measureThroughput(server: Server): Promise<Throughput> {
  for (const target of TARGETS) {
    progress(`${target.label}: warm-up`);
    await drive(server, target, WARMUP_SECONDS);
  }
  const result: Throughput = { runs: { noop: [], noopSync: [], get: [] }, retained: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order, so drift on the machine hits every target alike; the last round
    // ends with an invoking endpoint, so the memory check starts right after invocations.
    const order = TARGETS.map((_, i) => TARGETS[(i + round + 2 * ROUNDS) % TARGETS.length]!);
    for (const target of order) {
      progress(`${target.label}: round ${round + 1}/${ROUNDS}`);
      result.runs[target.key].push(await drive(server, target, ROUND_SECONDS));
      if (target.method === "POST") result.retained.push(await countInvocations(server));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Part 2: memory

interface MemoryPoint {
  rssKb: number;
  heapUsed: number;
}

async function memoryPoint(server: Server): Promise<MemoryPoint> {
  const heapUsed = await getJson<number>(`${server.url}/bench/heapUsed`);
  return { rssKb: memory(server.pid).rssKb, heapUsed };
}

async function forceGc(server: Server): Promise<void> {
  const answer = await request(`${server.url}/bench/gc`, "POST", { agent });
  if (answer.status !== 204) throw new Error(`POST /bench/gc: ${answer.status} ${answer.body}`);
}

interface MemoryResult {
  before: MemoryPoint;
  afterLoad: MemoryPoint;
  hwmKb: number;
  /** Max over the rounds of the invocation count right after an invoking round. */
  retainedAfterLoad: number;
  /** ms from the end of the load until the invocation list was empty. */
  emptyAfterMs: number;
  retainedAfterExpiry: number;
  /** RSS 1 s after the invocation list was empty. */
  afterExpiryRssKb: number;
  /** After IDLE_WATCH_MS of idleness (no GC forced), and the lowest RSS seen meanwhile. */
  afterIdle: MemoryPoint;
  minIdleRssKb: number;
  afterGc: MemoryPoint;
}

async function countInvocations(server: Server): Promise<number> {
  return (await getJson<unknown[]>(`${server.url}/action_invocations/`)).length;
}

async function afterLoadMemory(
  server: Server,
  before: MemoryPoint,
  retainedPerRound: number[],
): Promise<MemoryResult> {
  const loadEnded = performance.now();
  const retainedAfterLoad = Math.max(...retainedPerRound, await countInvocations(server));
  const afterLoad = await memoryPoint(server);
  const hwmKb = memory(server.pid).hwmKb;
  progress("memory: waiting for retention expiry");
  let retained = retainedAfterLoad;
  const deadline = loadEnded + RETENTION_MS + 3000;
  while (retained > 0 && performance.now() < deadline) {
    await sleep(250);
    retained = await countInvocations(server);
  }
  const emptyAfterMs = performance.now() - loadEnded;
  // Idle from here on (RSS from /proc only), so V8 may shrink the heap on its own.
  progress(`memory: idle for ${IDLE_WATCH_MS / 1000} s`);
  const watchStart = performance.now();
  let afterExpiryRssKb = Number.NaN;
  let minIdleRssKb = Number.POSITIVE_INFINITY;
  while (performance.now() - watchStart < IDLE_WATCH_MS) {
    await sleep(500);
    const { rssKb } = memory(server.pid);
    if (Number.isNaN(afterExpiryRssKb) && performance.now() - watchStart >= 1000) {
      afterExpiryRssKb = rssKb;
    }
    minIdleRssKb = Math.min(minIdleRssKb, rssKb);
  }
  const afterIdle = await memoryPoint(server);
  await forceGc(server);
  await sleep(200);
  const afterGc = await memoryPoint(server);
  return {
    before,
    afterLoad,
    hwmKb,
    retainedAfterLoad,
    emptyAfterMs,
    retainedAfterExpiry: retained,
    afterExpiryRssKb,
    afterIdle,
    minIdleRssKb,
    afterGc,
  };
}

// ---------------------------------------------------------------------------------------
// Part 3: latency with invocations in flight

interface SyncSleepResult {
  sleepMs: number;
  concurrency: number;
  /** POST round trip − sleep, ms, one per invocation. */
  overhead: number[];
  failures: number;
  maxInFlight: number;
  serverCpuMs: number;
  invocations: number;
}

/**
 * `concurrency` workers POST the synchronous sleeping action back to back, their starts
 * spread over one sleep so invocations end evenly rather than in waves. Invocations sent
 * during that ramp-up are not recorded.
 */
async function syncSleepOverhead(
  server: Server,
  concurrency: number,
  sleepMs: number,
  seconds: number,
): Promise<SyncSleepResult> {
  const url = `${server.url}/bench/sleepSync`;
  const start = performance.now();
  const rampMs = concurrency > 1 ? sleepMs : 0;
  const deadline = start + rampMs + seconds * 1000;
  const overhead: number[] = [];
  let failures = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let invocations = 0;
  const cpuBefore = cpuMs(server.pid);
  const worker = async (i: number) => {
    await sleep((i * rampMs) / concurrency);
    while (performance.now() < deadline) {
      const t0 = performance.now();
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const answer = await request(url, "POST", { json: { ms: sleepMs }, agent });
        const elapsed = performance.now() - t0;
        invocations++;
        if (answer.status !== 204) failures++;
        else if (t0 >= start + rampMs) overhead.push(elapsed - sleepMs);
      } catch {
        failures++;
        await sleep(10);
      } finally {
        inFlight--;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  return {
    sleepMs,
    concurrency,
    overhead,
    failures,
    maxInFlight,
    serverCpuMs: cpuMs(server.pid) - cpuBefore,
    invocations,
  };
}

interface ProbeResult {
  /** POST sent → GET answered `completed`, ms. */
  total: number[];
  /** The POST round trip alone, ms. */
  post: number[];
  /** GETs until `completed`, one count per probe. */
  polls: number[];
  /** `status` in the POST's 201 answer. */
  postStatus: Record<string, number>;
  failures: number;
  serverCpuMs: number;
}

/** Back to back for `seconds`: POST /bench/noop, then GET its status until completed. */
async function probeNoop(server: Server, seconds: number): Promise<ProbeResult> {
  const result: ProbeResult = {
    total: [],
    post: [],
    polls: [],
    postStatus: {},
    failures: 0,
    serverCpuMs: 0,
  };
  const cpuBefore = cpuMs(server.pid);
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    try {
      const t0 = performance.now();
      const posted = await request(`${server.url}/bench/noop`, "POST", { agent });
      const t1 = performance.now();
      if (posted.status !== 201) throw new Error(`POST /bench/noop: ${posted.status}`);
      const status = JSON.parse(posted.body) as { href: string; status: string };
      result.postStatus[status.status] = (result.postStatus[status.status] ?? 0) + 1;
      let polls = 0;
      let completed = false;
      while (!completed && performance.now() - t1 < POLL_LIMIT_MS) {
        polls++;
        completed =
          (await getJson<{ status: string }>(server.url + status.href)).status === "completed";
      }
      if (!completed) throw new Error(`not completed within ${POLL_LIMIT_MS} ms`);
      result.total.push(performance.now() - t0);
      result.post.push(t1 - t0);
      result.polls.push(polls);
    } catch {
      result.failures++;
      await sleep(10);
    }
  }
  result.serverCpuMs = cpuMs(server.pid) - cpuBefore;
  return result;
}

interface ProbeUnderLoad extends ProbeResult {
  runningBefore: number;
  runningAfter: number;
  longSleepMs: number;
}

async function runningSleeps(server: Server): Promise<number> {
  const list = await getJson<{ status: string }[]>(`${server.url}/bench/sleep`);
  return list.filter((s) => s.status === "running").length;
}

/** 100 asynchronous sleeps that outlast the probe; probe; then cancel them. */
async function probeWithLongInFlight(server: Server): Promise<ProbeUnderLoad> {
  const longSleepMs = PROBE_SECONDS * 1000 + 3000;
  const started = await Promise.all(
    Array.from({ length: IN_FLIGHT }, () =>
      request(`${server.url}/bench/sleep`, "POST", { json: { ms: longSleepMs }, agent }),
    ),
  );
  const hrefs: string[] = [];
  for (const answer of started) {
    if (answer.status !== 201) throw new Error(`POST /bench/sleep: ${answer.status}`);
    hrefs.push((JSON.parse(answer.body) as { href: string }).href);
  }
  try {
    const runningBefore = await runningSleeps(server);
    const probe = await probeNoop(server, PROBE_SECONDS);
    const runningAfter = await runningSleeps(server);
    return { ...probe, runningBefore, runningAfter, longSleepMs };
  } finally {
    // Cancel them (DELETE answers once each has settled), so nothing outlives this part.
    await Promise.all(
      hrefs.map((href) => request(server.url + href, "DELETE", { agent }).catch(() => {})),
    );
  }
}

interface PacedGetResult {
  rtt: number[];
  serverCpuMs: number;
}

/** The reference for part 3's CPU figures: one property GET every PACE_MS, one at a time. */
async function pacedGet(server: Server, seconds: number): Promise<PacedGetResult> {
  const rtt: number[] = [];
  const cpuBefore = cpuMs(server.pid);
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    const answer = await request(`${server.url}/bench/value`, "GET", { agent });
    if (answer.status === 200) rtt.push(performance.now() - t0);
    await sleep(PACE_MS);
  }
  return { rtt, serverCpuMs: cpuMs(server.pid) - cpuBefore };
}

interface LatencyResult {
  pacedGet: PacedGetResult;
  syncIdle: SyncSleepResult;
  syncLoaded: SyncSleepResult;
  probeIdle: ProbeResult;
  probeLoaded: ProbeUnderLoad;
}

async function measureLatency(server: Server): Promise<LatencyResult> {
  progress("latency: warm-up");
  await syncSleepOverhead(server, 1, IDLE_SLEEP_MS, 1);
  await probeNoop(server, 1);
  progress(`property GET every ${PACE_MS} ms: reference`);
  const pacedGetResult = await pacedGet(server, IDLE_SECONDS);
  progress("synchronous sleep: idle baseline");
  const syncIdle = await syncSleepOverhead(server, 1, IDLE_SLEEP_MS, IDLE_SECONDS);
  progress(`synchronous sleep: ${IN_FLIGHT} in flight`);
  const syncLoaded = await syncSleepOverhead(server, IN_FLIGHT, LONG_SLEEP_MS, IN_FLIGHT_SECONDS);
  progress("no-op POST → completed: idle baseline");
  const probeIdle = await probeNoop(server, IDLE_SECONDS);
  progress(`no-op POST → completed: ${IN_FLIGHT} long invocations in flight`);
  const probeLoaded = await probeWithLongInFlight(server);
  return { pacedGet: pacedGetResult, syncIdle, syncLoaded, probeIdle, probeLoaded };
}

// ---------------------------------------------------------------------------------------
// Report

function report(
  { runs: throughput }: Throughput,
  mem: MemoryResult,
  latency: LatencyResult,
  meta: RunMeta & { shutdown: string },
): string {
  const lines: string[] = [];
  lines.push("# Action benchmark: invocation cost and bounded retention", "");
  lines.push(...environmentLines(meta));
  lines.push(
    "- **All figures are medians on a shared 2-core machine**: the load client runs in the bench process on the same cores as the server. Read the ratios more than the absolute numbers.",
  );
  lines.push(
    `- Server: \`node --expose-gc --import tsx bench/actions-server.ts\`, a \`ThingServer\` from \`dist/\` with \`actionRetentionMs: ${RETENTION_MS}\` (and the default cap of ${MAX_RETAINED} retained invocations), one Thing \`bench\`: \`noop\` (\`@action() async noop() {}\`), \`noopSync\` (\`synchronous: true\`), \`sleep\` / \`sleepSync\` (\`await ctx.sleep(input.ms)\`), property \`value\`.`,
  );
  lines.push("");

  // Part 1
  lines.push("## Invocations per second", "");
  lines.push(
    `autocannon ${packageVersion("autocannon")}, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${ROUNDS} rounds × ${ROUND_SECONDS} s per endpoint after a ${WARMUP_SECONDS} s warm-up each; the endpoints alternate round by round (order rotated). Latency percentiles from every response time (autocannon's histogram has whole milliseconds only); server CPU = run time of all the server process's threads over the round (/proc/<pid>/task/*/schedstat) per answered request. Ratio = req/s ÷ the property GET's req/s.`,
    "",
  );
  lines.push(
    row(["endpoint", "answer", "req/s", "ratio to GET", "p50 / p99 ms", "server CPU µs/req"]),
    rule(6),
  );
  const getRps = median(throughput.get.map((r) => r.rps));
  for (const target of TARGETS) {
    const runs = throughput[target.key];
    const med = (key: keyof Run) => median(runs.map((r) => r[key]));
    lines.push(
      row([
        target.label,
        String(target.status),
        int(med("rps")),
        `**${(med("rps") / getRps).toFixed(2)}**`,
        `${ms(med("p50"))} / ${ms(med("p99"))}`,
        int(med("cpuUs")),
      ]),
    );
  }
  lines.push("", "Per round (req/s, in run order):", "");
  lines.push(row(["endpoint", "req/s", "errors / wrong status"]), rule(3));
  for (const target of TARGETS) {
    const runs = throughput[target.key];
    lines.push(row([target.label, runs.map((r) => int(r.rps)).join(", "), failuresCell(runs)]));
  }
  lines.push("");

  // Part 2
  lines.push("## Memory: retention is bounded", "");
  const capOk = mem.retainedAfterLoad <= MAX_RETAINED;
  lines.push(
    `- Retained invocations right after the load (GET /action_invocations/ length): **${int(mem.retainedAfterLoad)}** (cap ${MAX_RETAINED}: ${capOk ? "OK" : "**EXCEEDED**"}); ${int(mem.retainedAfterExpiry)} left ${ms(mem.emptyAfterMs)} ms after the load (retention ${RETENTION_MS} ms).`,
  );
  lines.push(
    `- Peak RSS over the run (VmHWM, read right after the load): ${mb(mem.hwmKb)} MB.`,
    "",
  );
  lines.push(row(["server process", "RSS MB", "V8 heap used MB", "RSS vs before"]), rule(4));
  const memRow = (label: string, p: MemoryPoint) =>
    row([
      label,
      mb(p.rssKb),
      Number.isNaN(p.heapUsed) ? "–" : (p.heapUsed / 1048576).toFixed(1),
      `${p.rssKb >= mem.before.rssKb ? "+" : ""}${mb(p.rssKb - mem.before.rssKb)} MB (×${(p.rssKb / mem.before.rssKb).toFixed(2)})`,
    ]);
  lines.push(memRow("before the load (idle, after a forced GC)", mem.before));
  lines.push(memRow("right after the load", mem.afterLoad));
  lines.push(
    memRow("retention expired (list empty), +1 s idle", {
      rssKb: mem.afterExpiryRssKb,
      heapUsed: Number.NaN,
    }),
  );
  lines.push(
    memRow(`retention expired, +${IDLE_WATCH_MS / 1000} s idle (no forced GC)`, mem.afterIdle),
  );
  lines.push(
    memRow(`lowest RSS during those ${IDLE_WATCH_MS / 1000} s`, {
      rssKb: mem.minIdleRssKb,
      heapUsed: Number.NaN,
    }),
  );
  lines.push(memRow("then after a forced GC (`global.gc()`)", mem.afterGc));
  lines.push("");

  // Part 3
  lines.push(`## Latency with ${IN_FLIGHT} invocations in flight`, "");
  lines.push(
    `Plain \`node:http\` client with a keep-alive agent. (a) \`POST /bench/sleepSync {"ms": S}\` answers 204 when the action is done: overhead = round trip − S. Loaded: ${IN_FLIGHT} workers post back to back (their starts spread over one sleep, so invocations end evenly, not in waves; the ramp-up is not recorded) for ${IN_FLIGHT_SECONDS} s. Idle baseline: one at a time, S = ${IDLE_SLEEP_MS} ms, ${IDLE_SECONDS} s. (b) \`POST /bench/noop\`, then \`GET\` its status (the \`href\` of the 201 answer) back to back until \`completed\`: time from sending the POST to the answer that says completed. Loaded: while ${IN_FLIGHT} asynchronous \`sleep\` invocations are running (started before, outlasting the ${PROBE_SECONDS} s of probing, cancelled after); idle baseline ${IDLE_SECONDS} s.`,
    "",
  );
  lines.push(
    row([
      "measure",
      "samples",
      "p50 ms",
      "p99 ms",
      "max ms",
      "p50 vs idle",
      "server CPU µs/invocation",
      "notes",
    ]),
    rule(8),
  );
  const { syncIdle, syncLoaded, probeIdle, probeLoaded } = latency;
  const sIdle = summary(syncIdle.overhead);
  const sLoaded = summary(syncLoaded.overhead);
  const pIdle = summary(probeIdle.total);
  const pLoaded = summary(probeLoaded.total);
  const perInvocation = (cpu: number, n: number) => int((cpu * 1000) / Math.max(1, n));
  const paced = summary(latency.pacedGet.rtt);
  lines.push(
    row([
      `(reference) property GET round trip, one every ${PACE_MS} ms`,
      paced.n,
      ms(paced.p50),
      ms(paced.p99),
      ms(paced.max),
      "",
      `${perInvocation(latency.pacedGet.serverCpuMs, paced.n)} (per GET)`,
      "no action: what one request costs the server at this low rate",
    ]),
  );
  lines.push(
    row([
      `(a) sync sleep overhead, idle (S = ${syncIdle.sleepMs} ms, one at a time)`,
      sIdle.n,
      ms(sIdle.p50),
      ms(sIdle.p99),
      ms(sIdle.max),
      "",
      perInvocation(syncIdle.serverCpuMs, syncIdle.invocations),
      `${syncIdle.failures} failures`,
    ]),
  );
  lines.push(
    row([
      `**(a) sync sleep overhead, ${IN_FLIGHT} in flight (S = ${syncLoaded.sleepMs} ms)**`,
      sLoaded.n,
      `**${ms(sLoaded.p50)}**`,
      `**${ms(sLoaded.p99)}**`,
      ms(sLoaded.max),
      `×${(sLoaded.p50 / sIdle.p50).toFixed(2)}`,
      perInvocation(syncLoaded.serverCpuMs, syncLoaded.invocations),
      `max in flight ${syncLoaded.maxInFlight}; ${int(sLoaded.n / IN_FLIGHT_SECONDS)} invocations/s; ${syncLoaded.failures} failures`,
    ]),
  );
  const notes = (p: ProbeResult) =>
    `GETs until completed: p50 ${median(p.polls)}, max ${Math.max(...p.polls)}; POST alone p50 ${ms(median(p.post))} ms; the 201 said ${Object.entries(
      p.postStatus,
    )
      .map(([k, v]) => `${k} ×${v}`)
      .join(", ")}; ${p.failures} failures`;
  lines.push(
    row([
      "(b) no-op POST → completed, idle",
      pIdle.n,
      ms(pIdle.p50),
      ms(pIdle.p99),
      ms(pIdle.max),
      "",
      perInvocation(probeIdle.serverCpuMs, pIdle.n),
      notes(probeIdle),
    ]),
  );
  lines.push(
    row([
      `**(b) no-op POST → completed, ${IN_FLIGHT} long invocations running**`,
      pLoaded.n,
      `**${ms(pLoaded.p50)}**`,
      `**${ms(pLoaded.p99)}**`,
      ms(pLoaded.max),
      `×${(pLoaded.p50 / pIdle.p50).toFixed(2)}`,
      perInvocation(probeLoaded.serverCpuMs, pLoaded.n),
      `${probeLoaded.runningBefore} / ${probeLoaded.runningAfter} long ones running before / after the probing; ${notes(probeLoaded)}`,
    ]),
  );
  lines.push(
    "",
    "Server CPU per invocation in this part includes everything the server did in the window (the status GETs of (b), the HTTP round trips, timers); at these low rates nothing is batched, unlike the saturated runs of the first table.",
  );
  lines.push("", `Server shutdown (SIGTERM): ${meta.shutdown}`, "");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const run = startRun();

  const server = await startServer();
  for (const target of TARGETS) {
    const answer = await request(server.url + target.path, target.method, { agent });
    if (answer.status !== target.status) {
      throw new Error(`${target.method} ${target.path}: ${answer.status}, not ${target.status}`);
    }
  }
  // The pre-load reference: idle, after a GC, with retention expired for the checks above.
  await sleep(RETENTION_MS + 200);
  await forceGc(server);
  await sleep(200);
  const before = await memoryPoint(server);

  const throughput = await measureThroughput(server);
  const mem = await afterLoadMemory(server, before, throughput.retained);
  const latency = await measureLatency(server);

  const stopped = await terminate(server.child);
  const shutdownLine = await waitForLine(
    server.child,
    (line) => (parseJson(line)?.shutdown ? line : undefined),
    100,
  ).then(
    (found) => found.value,
    () => "(no report)",
  );
  const shutdown = `exit ${stopped.code}${stopped.killed ? " (SIGKILLed)" : ""} after ${ms(stopped.ms)} ms; ${shutdownLine}`;

  writeReport(RESULTS, report(throughput, mem, latency, { ...run(), shutdown }));
}

// autocannon may hold handles: runBench exits when done.
runBench("actions", main, () => agent.destroy());
