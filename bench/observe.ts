/**
 * `npm run bench:observe`: property observation over SSE (WoT HTTP SSE Profile,
 * observeproperty) with 100 subscribers, against a bare node:http SSE fan-out measured in
 * the same run.
 *
 * Children: `bench/observe-server.ts` (a ThingServer from `dist/`, run with
 * `node --import tsx`: a Thing `ticker` whose property `tick` changes `rate` times per
 * second from a timer inside the Thing, each value `{ seq, t }` with t its making time),
 * `bench/observe-bare-server.mjs` (node:http, same API, same clock, `res.write` of the
 * same text to every subscriber), and for each measurement a fresh load client
 * `bench/observe-client.mjs` (its own process, so its CPU is not the server's) that opens
 * 100 SSE subscribers with node:http and parses `event:`/`data:`/`id:` lines.
 *
 * 1. Fixed rates (100/s, 1000/s): per server, rounds alternating (order flipped each
 *    round): notifications delivered per second (total and per subscriber), latency
 *    p50/p99 (receive time − t, one machine clock), server CPU per delivered notification
 *    (/proc/<pid>/task/<tid>/schedstat, all threads), and whether every subscriber got
 *    every change (no seq gap, the last value reached). Medians over the rounds.
 * 2. Highest sustained rate: stepping up ×1.5 from 1000/s until a step is not sustained
 *    (twice in a row: the machine is noisy). Sustained = ≥ 97 % of the target rate made,
 *    every subscriber got every change, p99 < 100 ms.
 * 3. Coalescing: one stalled subscriber (never reads; padded values fill its socket
 *    first) among the 100 at 1000/s: the other 99 must still get every change, the
 *    server's RSS must stay flat over the window, and the stalled one, once it reads
 *    again, must catch up to the last value having skipped (coalesced) changes. The bare
 *    server, which buffers without bound, is shown for contrast.
 *
 * Prints a markdown table and writes it to `bench/results/observe.md`. Every child is
 * killed at the end, on error and on Ctrl-C; a watchdog bounds the run. Knobs (env):
 * BENCH_QUICK=1 for a smoke run.
 */
import { fileURLToPath } from "node:url";
import {
  alive,
  type ByKind,
  environmentLines,
  int,
  KINDS,
  type Kind,
  kindsInOrder,
  LABEL,
  launch,
  launchServer,
  mb,
  median,
  ms,
  progress,
  QUICK,
  type RunMeta,
  row,
  rssKb,
  rule,
  runBench,
  type ServerChild,
  type Stopped,
  startRun,
  terminate,
  waitForJson,
  watchdog,
  writeReport,
} from "./support.js";

// ---------------------------------------------------------------------------------------
// Configuration

const SUBSCRIBERS = 100;
const FIXED_RATES = [100, 1000];
const ROUNDS = QUICK ? 1 : 3;
const WARMUP_MS = 500;
const MEASURE_MS = QUICK ? 1000 : 2000;
const STEP_FROM = 1000;
const STEP_FACTOR = 1.5;
const STEP_MAX = 40_000;
/** Sustained: at least this share of the target rate made, no gap, p99 under the limit. */
const SUSTAIN_SHARE = 0.97;
const SUSTAIN_P99_MS = 100;
const STALL_RATE = 1000;
const STALL_MEASURE_MS = QUICK ? 2000 : 4000;
/** Padding while the stalled subscriber's socket fills: ~4 MB/s at STALL_RATE. */
const STALL_FILL_PAD = 4096;
const STALL_FILL_MS = 2500;
/** RSS flat: window end − window start (medians of 3 samples each) under this. */
const RSS_FLAT_KB = 4096;

const LABTHINGS_SERVER = fileURLToPath(new URL("./observe-server.ts", import.meta.url));
const BARE_SERVER = fileURLToPath(new URL("./observe-bare-server.mjs", import.meta.url));
const CLIENT = fileURLToPath(new URL("./observe-client.mjs", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/observe.md", import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const CLIENT_TIMEOUT_MS = 45_000;
/** The whole run is aborted past this (children killed, exit 1). */
const WATCHDOG_MS = 4 * 60_000;

// ---------------------------------------------------------------------------------------
// Servers and the load client

interface Server extends ServerChild {
  kind: Kind;
}

async function startServer(kind: Kind): Promise<Server> {
  const args = kind === "labthings" ? ["--import", "tsx", LABTHINGS_SERVER] : [BARE_SERVER];
  return { ...(await launchServer(LABEL[kind], args, {}, READY_TIMEOUT_MS)), kind };
}

/** What `bench/observe-client.mjs` prints (see there). */
interface ClientResult {
  subscribers: number;
  seconds: number;
  changesPerSecond: number;
  delivered: number;
  deliveredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  serverCpuMs: number;
  clientCpuMs: number;
  rssKb: number[];
  lastSeq: number;
  settled: boolean;
  firstSeqSpread: number;
  missingAtEnd: number;
  gaps: number;
  skipped: number;
  subscribersWithGaps: number;
  malformed: number;
  errors: string[];
  endedEarly: number;
}

interface StallResult extends ClientResult {
  fillSeq: number;
  stalled: {
    receivedWhileStalled: number;
    received: number;
    caughtUp: boolean;
    lastSeq: number;
    gaps: number;
    skipped: number;
    errors: string[];
    ended: boolean;
  };
}

interface Run extends ClientResult {
  kind: Kind;
  rate: number;
  /** Every subscriber got every change: no gap, all reached the last value, no error. */
  complete: boolean;
  sustained: boolean;
  /** Server CPU per delivered notification, µs. */
  cpuUs: number;
}

async function runClient<T extends ClientResult>(
  server: Server,
  settings: Record<string, unknown>,
): Promise<T> {
  const client = launch("load client", [CLIENT], {
    BENCH_CLIENT: JSON.stringify({
      url: server.url,
      serverPid: server.pid,
      subscribers: SUBSCRIBERS,
      warmupMs: WARMUP_MS,
      measureMs: MEASURE_MS,
      ...settings,
    }),
  });
  try {
    const record = await waitForJson(
      client,
      (r) => r.event === "result" || r.event === "error",
      CLIENT_TIMEOUT_MS,
    );
    if (record.event === "error") {
      throw new Error(`load client against ${LABEL[server.kind]}: ${String(record.message)}`);
    }
    return record as unknown as T;
  } finally {
    if (alive(client.process)) client.process.kill("SIGKILL");
  }
}

function judge(kind: Kind, rate: number, result: ClientResult): Run {
  const complete =
    result.gaps === 0 &&
    result.settled &&
    result.missingAtEnd === 0 &&
    result.firstSeqSpread === 0 &&
    result.malformed === 0 &&
    result.errors.length === 0 &&
    result.endedEarly === 0;
  return {
    ...result,
    kind,
    rate,
    complete,
    sustained:
      complete && result.changesPerSecond >= SUSTAIN_SHARE * rate && result.p99 < SUSTAIN_P99_MS,
    cpuUs: result.delivered > 0 ? (result.serverCpuMs * 1000) / result.delivered : Number.NaN,
  };
}

async function measureRate(server: Server, rate: number): Promise<Run> {
  return judge(server.kind, rate, await runClient(server, { mode: "rate", rate }));
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "–");

// ---------------------------------------------------------------------------------------
// Measurements

async function measureFixed(servers: ByKind<Server>): Promise<Map<number, ByKind<Run[]>>> {
  const results = new Map<number, ByKind<Run[]>>();
  for (const rate of FIXED_RATES) {
    const runs: ByKind<Run[]> = { labthings: [], bare: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of kindsInOrder(round)) {
        progress(`${rate}/s: round ${round + 1}/${ROUNDS}, ${LABEL[kind]}`);
        runs[kind].push(await measureRate(servers[kind], rate));
      }
    }
    results.set(rate, runs);
  }
  return results;
}

interface StepUp {
  steps: Run[];
  /** Highest rate sustained before the first rate that failed twice. */
  highest: Run | undefined;
  capped: boolean;
}

/**
 * Both servers climb the same ladder, interleaved (order flipped each step) so drift on
 * the machine hits both alike; each stops at the first rate it fails twice.
 */
async function stepUp(servers: ByKind<Server>): Promise<ByKind<StepUp>> {
  const result: ByKind<StepUp> = {
    labthings: { steps: [], highest: undefined, capped: true },
    bare: { steps: [], highest: undefined, capped: true },
  };
  const climbing = new Set<Kind>(KINDS);
  let rate = Math.round(STEP_FROM * STEP_FACTOR);
  for (let step = 0; rate <= STEP_MAX && climbing.size > 0; step++) {
    for (const kind of kindsInOrder(step).filter((k) => climbing.has(k))) {
      const record = result[kind];
      progress(`step-up ${LABEL[kind]}: ${rate}/s`);
      let run = await measureRate(servers[kind], rate);
      record.steps.push(run);
      if (!run.sustained) {
        progress(`step-up ${LABEL[kind]}: ${rate}/s again`);
        run = await measureRate(servers[kind], rate);
        record.steps.push(run);
      }
      if (run.sustained) {
        record.highest = run;
      } else {
        record.capped = false;
        climbing.delete(kind);
      }
    }
    rate = Math.round(rate * STEP_FACTOR);
  }
  return result;
}

async function measureStall(server: Server): Promise<StallResult & { rssBeforeKb: number }> {
  progress(`stalled subscriber: ${LABEL[server.kind]}`);
  const rssBeforeKb = rssKb(server.pid);
  const result = await runClient<StallResult>(server, {
    mode: "stall",
    rate: STALL_RATE,
    measureMs: STALL_MEASURE_MS,
    fillPad: STALL_FILL_PAD,
    fillMs: STALL_FILL_MS,
  });
  return { ...result, rssBeforeKb };
}

/** RSS growth over the window: median of the last 3 samples − median of the first 3. */
function rssGrowthKb(samples: readonly number[]): number {
  if (samples.length < 6) return (samples.at(-1) ?? 0) - (samples[0] ?? 0);
  return median(samples.slice(-3)) - median(samples.slice(0, 3));
}

// ---------------------------------------------------------------------------------------
// Report

interface Results {
  fixed: Map<number, ByKind<Run[]>>;
  steps: ByKind<StepUp>;
  stall: ByKind<StallResult & { rssBeforeKb: number }>;
  shutdown: ByKind<Stopped>;
  meta: RunMeta;
}

function report(results: Results): string {
  const { fixed, steps, stall, meta } = results;
  const lines: string[] = [];
  lines.push("# Observation benchmark: property changes over SSE to 100 subscribers", "");
  lines.push(...environmentLines(meta));
  lines.push(
    "- **All figures are medians on a shared 2-core machine**: the load client (100 subscribers, one process) runs on the same two cores as the server and needs about as much CPU as the server. Read the ratios more than the absolute numbers.",
  );
  lines.push(
    "- labthings-ts = `node --import tsx bench/observe-server.ts`: a `ThingServer` from `dist/`, Thing `ticker`, property `tick = { seq, t }` assigned by a 1 ms timer inside the Thing (`t = performance.timeOrigin + performance.now()` when made), observed with `GET /ticker/tick` + `Accept: text/event-stream`. node:http = `bench/observe-bare-server.mjs`: same timer, same API, one `res.write` of the same `event:`/`data:`/`id:` text per subscriber, no back-pressure handling.",
  );
  lines.push(
    `- Load client = \`bench/observe-client.mjs\`, a fresh process per measurement: ${SUBSCRIBERS} node:http SSE subscribers, subscribed before the rate is set; ${WARMUP_MS} ms warm-up, then a ${MEASURE_MS} ms window. Latency = receive time − t (one machine clock). Server CPU = run time of all the server's threads over the window (/proc/<pid>/task/*/schedstat) ÷ notifications delivered in it. "Every change" = every subscriber received every change from its first to the last one made (no seq gap, no error).`,
  );
  lines.push("");

  lines.push("## Fixed change rates", "");
  lines.push(
    `${ROUNDS} rounds per server, alternating (order flipped each round); medians. Ratio = labthings-ts ÷ node:http.`,
    "",
  );
  lines.push(
    row([
      "changes/s (target)",
      "server",
      "changes/s made",
      "notifications/s delivered (total)",
      "per subscriber",
      "latency p50 / p99 ms",
      "server CPU µs / notification",
      "every change, rounds",
    ]),
    rule(8),
  );
  for (const [rate, runs] of fixed) {
    const med = (kind: Kind, key: keyof Run) => median(runs[kind].map((r) => Number(r[key])));
    for (const kind of KINDS) {
      lines.push(
        row([
          int(rate),
          LABEL[kind],
          int(med(kind, "changesPerSecond")),
          int(med(kind, "deliveredPerSecond")),
          int(med(kind, "deliveredPerSecond") / SUBSCRIBERS),
          `${ms(med(kind, "p50"))} / ${ms(med(kind, "p99"))}`,
          med(kind, "cpuUs").toFixed(1),
          `${runs[kind].filter((r) => r.complete).length} / ${runs[kind].length}`,
        ]),
      );
    }
    lines.push(
      row([
        int(rate),
        "**ratio**",
        ratio(med("labthings", "changesPerSecond"), med("bare", "changesPerSecond")),
        `**${ratio(med("labthings", "deliveredPerSecond"), med("bare", "deliveredPerSecond"))}**`,
        "",
        `${ratio(med("labthings", "p50"), med("bare", "p50"))} / ${ratio(med("labthings", "p99"), med("bare", "p99"))}`,
        `**${ratio(med("labthings", "cpuUs"), med("bare", "cpuUs"))}**`,
        "",
      ]),
    );
  }
  lines.push("");

  lines.push("## Highest sustained change rate", "");
  lines.push(
    `Stepping up ×${STEP_FACTOR} from ${STEP_FROM}/s (${STEP_MAX}/s at most), one ${MEASURE_MS} ms window per step; both servers climb together, interleaved (order flipped each step); a step that fails is run once more and a server's climb stops when it fails again. Sustained = at least ${SUSTAIN_SHARE * 100} % of the target changes made, every subscriber got every change, p99 latency < ${SUSTAIN_P99_MS} ms. With ${SUBSCRIBERS} subscribers, the client process parses ${SUBSCRIBERS}× the change rate: at the top it competes with the server for the two cores.`,
    "",
  );
  lines.push(
    row([
      "server",
      "highest sustained changes/s",
      "notifications/s delivered there",
      "p50 / p99 ms there",
      "server CPU µs / notification there",
      "steps (target: made/s, every change?, p99 ms)",
    ]),
    rule(6),
  );
  for (const kind of KINDS) {
    const { highest, capped } = steps[kind];
    lines.push(
      row([
        LABEL[kind],
        highest
          ? `**${int(highest.rate)}**${capped ? " (cap)" : ""}`
          : `< ${int(STEP_FROM * STEP_FACTOR)}`,
        highest ? int(highest.deliveredPerSecond) : "–",
        highest ? `${ms(highest.p50)} / ${ms(highest.p99)}` : "–",
        highest ? highest.cpuUs.toFixed(1) : "–",
        steps[kind].steps
          .map(
            (r) =>
              `${int(r.rate)}: ${int(r.changesPerSecond)}, ${r.complete ? "yes" : `no (${r.subscribersWithGaps} with gaps, ${r.missingAtEnd} short)`}, ${ms(r.p99)}${r.sustained ? "" : " ✗"}`,
          )
          .join("; "),
      ]),
    );
  }
  const lh = steps.labthings.highest?.rate;
  const bh = steps.bare.highest?.rate;
  if (lh !== undefined && bh !== undefined) {
    lines.push(row(["**ratio**", `**${ratio(lh, bh)}**`, "", "", "", ""]));
  }
  lines.push("");

  lines.push("## One stalled subscriber among the 100 (coalescing)", "");
  lines.push(
    `The stalled subscriber subscribes first and never reads; values padded to ${STALL_FILL_PAD} bytes run at ${STALL_RATE}/s for ${STALL_FILL_MS} ms to fill its socket (kernel buffers hold several MB), then padding stops, the other ${SUBSCRIBERS - 1} subscribe, and a ${STALL_MEASURE_MS} ms window at ${STALL_RATE}/s is recorded with the server's RSS sampled every 250 ms. Then the stalled subscriber reads again. RSS flat = growth over the window (median of the last 3 samples − median of the first 3) < ${mb(RSS_FLAT_KB)} MB. labthings-ts keeps only the latest value for a client whose socket is full; node:http buffers every write.`,
    "",
  );
  lines.push(
    row([
      "server",
      `the other ${SUBSCRIBERS - 1}: every change`,
      "delivered/s",
      "p50 / p99 ms",
      "RSS MB before fill → window start → end (max)",
      "RSS growth over the window",
      "stalled one: caught up to the last value",
      "stalled one: changes skipped (coalesced)",
    ]),
    rule(8),
  );
  for (const kind of KINDS) {
    const s = stall[kind];
    const complete =
      s.gaps === 0 &&
      s.settled &&
      s.missingAtEnd === 0 &&
      s.errors.length === 0 &&
      s.malformed === 0;
    const growth = rssGrowthKb(s.rssKb);
    lines.push(
      row([
        LABEL[kind],
        complete ? "yes" : `**no** (${s.subscribersWithGaps} with gaps, ${s.missingAtEnd} short)`,
        int(s.deliveredPerSecond),
        `${ms(s.p50)} / ${ms(s.p99)}`,
        `${mb(s.rssBeforeKb)} → ${mb(s.rssKb[0] ?? Number.NaN)} → ${mb(s.rssKb.at(-1) ?? Number.NaN)} (${mb(Math.max(...s.rssKb))})`,
        `${growth >= 0 ? "+" : ""}${mb(growth)} MB${kind === "labthings" ? (growth < RSS_FLAT_KB ? " (flat)" : " (**not flat**)") : ""}`,
        s.stalled.caughtUp ? "yes" : `**no** (at ${s.stalled.lastSeq} of ${s.lastSeq})`,
        kind === "labthings"
          ? `${int(s.stalled.skipped)} in ${s.stalled.gaps} gap(s)${s.stalled.skipped > 0 ? "" : " (**the stall never engaged**)"}`
          : `${int(s.stalled.skipped)} (buffers instead)`,
      ]),
    );
  }
  const l = stall.labthings;
  const check = (ok: boolean) => (ok ? "PASS" : "**FAIL**");
  lines.push(
    "",
    `Checks (labthings-ts): the other ${SUBSCRIBERS - 1} got every change: ${check(
      l.gaps === 0 && l.settled && l.missingAtEnd === 0 && l.errors.length === 0,
    )}; RSS flat: ${check(rssGrowthKb(l.rssKb) < RSS_FLAT_KB)}; the stalled subscriber was coalesced (skipped changes) and caught up to the last value: ${check(
      l.stalled.skipped > 0 && l.stalled.caughtUp,
    )}.`,
  );
  lines.push("");
  lines.push(
    `Shutdown at the end (SIGTERM → exit): labthings-ts ${results.shutdown.labthings.ms.toFixed(0)} ms, code ${results.shutdown.labthings.code}; node:http ${results.shutdown.bare.ms.toFixed(0)} ms.`,
    "",
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const run = startRun();
  const servers: ByKind<Server> = {
    labthings: await startServer("labthings"),
    bare: await startServer("bare"),
  };
  // Warm-up of both servers (JIT) and of the machine; not recorded.
  for (const kind of KINDS) {
    progress(`warm-up ${LABEL[kind]}`);
    await runClient(servers[kind], { mode: "rate", rate: 1000, measureMs: 500 });
  }
  const fixed = await measureFixed(servers);
  const steps = await stepUp(servers);
  const stall = {
    labthings: await measureStall(servers.labthings),
    bare: await measureStall(servers.bare),
  };
  const shutdown = {
    labthings: await terminate(servers.labthings.child),
    bare: await terminate(servers.bare.child),
  };
  const markdown = report({
    fixed,
    steps,
    stall,
    shutdown,
    meta: run(),
  });
  writeReport(RESULTS, markdown);
}

watchdog(WATCHDOG_MS, `bench:observe: still running after ${WATCHDOG_MS / 1000} s, aborting`);
runBench("observe", main);
