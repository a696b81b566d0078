/**
 * `npm run bench:shutdown`: SIGTERM → process exit of the real command line under fire,
 * against the same command line idle, in one run; and the memory of an invocation flood
 * with the queue cap, against the same flood without it.
 *
 * A. Shutdown, ROUNDS rounds, each one run of both (order flipped every round): the built
 *    CLI (`dist/src/cli/main.js serve`, the simulated microscope with a 320×240 camera at
 *    15 fps, `limits.streamsPerClient: 0`, settings in a temp folder). "Loaded": the load
 *    client (`bench/shutdown-client.mjs`, its own process) opens 500 MJPEG viewers, 100
 *    event streams and 20 websockets and starts a long `moveRelative` with an SSE watcher
 *    on it; after 0.5 s of streaming a setting is changed (so the sequence has a file to
 *    write) and SIGTERM sent. "Idle": the same CLI, nobody connected, the same setting
 *    change. Time from the signal to the process's exit (in this process), the exit code,
 *    the server's own sequence time (its "shut down cleanly" line), and what the clients
 *    saw: closing delimiters, clean ends, close codes 1001, the watcher's last status.
 * B. Flood: FLOOD_POSTS `stage/moveRelative` POSTs (autocannon, 50 connections) at a stage
 *    whose moves take hours, so every accepted one waits on the stage lock: with the
 *    default cap (`limits.pendingInvocations`, 1000) and with none (0), alternating. RSS
 *    before and after (VmRSS), peak (VmHWM), answers 201 and 503, then SIGTERM → exit.
 *
 * Prints a markdown report and writes `bench/results/shutdown.md`. Exits 0 even when a
 * target fails; 1 only if it could not run. Knobs (env): BENCH_QUICK=1 for a smoke run.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Child,
  environmentLines,
  int,
  launch,
  launchServer,
  mb,
  median,
  memory,
  parseJson,
  progress,
  QUICK,
  request,
  row,
  rule,
  runBench,
  runLoad,
  type ServerChild,
  type Stopped,
  sleep,
  startRun,
  terminate,
  waitForJson,
  writeReport,
} from "./support.js";

const ROUNDS = QUICK ? 2 : 10;
const FLOOD_ROUNDS = QUICK ? 1 : 3;
const FLOOD_POSTS = QUICK ? 2000 : 10_000;
const LOAD = { mjpeg: 500, sse: 100, ws: 20 };
/** Target: the median SIGTERM → exit with LOAD open and an action running. */
const TARGET_MEDIAN_MS = 250;
const STREAM_BEFORE_TERM_MS = 500;
const READY_TIMEOUT_MS = 60_000;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "dist/src/cli/main.js");
const CLIENT = join(ROOT, "bench/shutdown-client.mjs");
const MICROSCOPE = join(ROOT, "dist/examples/microscope");

type Mode = "loaded" | "idle";
type Cap = "capped" | "uncapped";

interface ShutdownRun {
  mode: Mode;
  stopped: Stopped;
  /** The server's own "shut down cleanly" (or "with problems") line. */
  report: Record<string, unknown> | undefined;
  clients: Record<string, unknown> | undefined;
}

interface FloodRun {
  cap: Cap;
  rssBeforeKb: number;
  rssAfterKb: number;
  peakKb: number;
  accepted: number;
  refused: number;
  other: number;
  seconds: number;
  stopped: Stopped;
}

/** A config for the CLI in a fresh folder; returns the config file. */
function microscopeConfig(dir: string, pendingInvocations?: number): string {
  const config = join(dir, "lab.json");
  writeFileSync(
    config,
    JSON.stringify({
      things: {
        stage: `${MICROSCOPE}/stage.js#SimulatedStage`,
        camera: {
          class: `${MICROSCOPE}/camera.js#SimulatedCamera`,
          options: { width: 320, height: 240, fps: 15 },
        },
      },
      settingsDir: "settings",
      logLevel: "info",
      limits: {
        streamsPerClient: 0,
        ...(pendingInvocations === undefined ? {} : { pendingInvocations }),
      },
    }),
  );
  return config;
}

function startCli(config: string): Promise<ServerChild> {
  return launchServer(
    "labthings-ts serve",
    [CLI, "serve", "--config", config, "--port", "0", "--log-format", "json"],
    {},
    READY_TIMEOUT_MS,
  );
}

const sequenceLine = (server: ServerChild) =>
  server.child.lines
    .map((line) => parseJson(line.text))
    .find((r) => r && /^shut down /.test(String(r.msg)));

async function shutdownRun(mode: Mode): Promise<ShutdownRun> {
  const dir = mkdtempSync(join(tmpdir(), "labthings-bench-shutdown-"));
  let client: Child | undefined;
  try {
    const server = await startCli(microscopeConfig(dir));
    if (mode === "loaded") {
      client = launch("shutdown client", [CLIENT], {
        BENCH_URL: server.url,
        BENCH_MJPEG: String(LOAD.mjpeg),
        BENCH_SSE: String(LOAD.sse),
        BENCH_WS: String(LOAD.ws),
      });
      const ready = await waitForJson(
        client,
        (r) => r.event === "ready" || r.event === "error",
        READY_TIMEOUT_MS,
      );
      if (ready.event === "error") throw new Error(`load client: ${String(ready.message)}`);
    }
    await sleep(STREAM_BEFORE_TERM_MS);
    const put = await request(`${server.url}/camera/exposureTime`, "PUT", { json: 12_345 });
    if (put.status !== 204) throw new Error(`PUT exposureTime answered ${put.status}`);
    const stopped = await terminate(server.child);
    const clients = client
      ? await waitForJson(client, (r) => r.event === "result" || r.event === "error", 20_000)
      : undefined;
    return { mode, stopped, report: sequenceLine(server), clients };
  } finally {
    if (client) await terminate(client);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function floodRun(cap: Cap): Promise<FloodRun> {
  const dir = mkdtempSync(join(tmpdir(), "labthings-bench-flood-"));
  try {
    const server = await startCli(microscopeConfig(dir, cap === "capped" ? undefined : 0));
    // Moves of hours: every accepted invocation waits on the stage lock.
    await request(`${server.url}/stage/speed`, "PUT", { json: 1 });
    await sleep(500);
    const before = memory(server.pid);
    let accepted = 0;
    let refused = 0;
    let other = 0;
    const { result } = await runLoad(
      {
        url: `${server.url}/stage/moveRelative`,
        method: "POST",
        connections: 50,
        pipelining: 1,
        duration: 120,
        amount: FLOOD_POSTS,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ x: 1 }),
      },
      {
        expected: (status) => {
          if (status === 201) accepted++;
          else if (status === 503) refused++;
          else other++;
          return status === 201;
        },
      },
    );
    const after = memory(server.pid);
    const stopped = await terminate(server.child, 20_000);
    return {
      cap,
      rssBeforeKb: before.rssKb,
      rssAfterKb: after.rssKb,
      peakKb: after.hwmKb,
      accepted,
      refused,
      other,
      seconds: result.duration,
      stopped,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : "–");
const sum = (runs: ShutdownRun[], key: string) =>
  runs.reduce((n, r) => n + Number(r.clients?.[key] ?? 0), 0);

function report(
  meta: ReturnType<ReturnType<typeof startRun>>,
  shutdown: ShutdownRun[],
  flood: FloodRun[],
): string {
  const loaded = shutdown.filter((r) => r.mode === "loaded");
  const idle = shutdown.filter((r) => r.mode === "idle");
  const exits = (runs: ShutdownRun[]) => runs.map((r) => r.stopped.ms);
  const sequences = (runs: ShutdownRun[]) => runs.map((r) => Number(r.report?.durationMs));
  const loadedMedian = median(exits(loaded));
  const idleMedian = median(exits(idle));
  const lines = [
    "# Shutdown benchmark: SIGTERM → exit under fire, and the invocation flood",
    "",
    ...environmentLines(meta),
    "- **Medians on a shared 2-core machine**: other work may be running; the ratio to the idle run of the same round matters more than the absolute numbers.",
    `- Server: the built CLI (\`labthings-ts serve\`), the simulated microscope (camera 320×240 at 15 fps), \`limits.streamsPerClient: 0\`. Loaded = ${LOAD.mjpeg} MJPEG viewers + ${LOAD.sse} event streams + ${LOAD.ws} websockets + one running \`moveRelative\` with an SSE watcher (\`bench/shutdown-client.mjs\`, its own process), ${STREAM_BEFORE_TERM_MS} ms of streaming, then a setting PUT and SIGTERM. Idle = the same CLI and PUT, nobody connected. Exit time measured by the bench from the signal to the child's exit; sequence time from the server's own log line.`,
    "",
    `## A. SIGTERM → exit, ${ROUNDS} rounds`,
    "",
    row(["run", "median ms", "max ms", "min ms", "sequence median ms", "exit codes"]),
    rule(6),
    ...(
      [
        ["loaded", loaded],
        ["idle", idle],
      ] as const
    ).map(([label, runs]) =>
      row([
        label,
        f0(median(exits(runs))),
        f0(Math.max(...exits(runs))),
        f0(Math.min(...exits(runs))),
        f0(median(sequences(runs))),
        [...new Set(runs.map((r) => (r.stopped.killed ? "killed" : r.stopped.code)))].join(", "),
      ]),
    ),
    "",
    `Loaded / idle (medians): ${(loadedMedian / idleMedian).toFixed(2)}×. Target: loaded median < ${TARGET_MEDIAN_MS} ms: ${loadedMedian < TARGET_MEDIAN_MS ? "**PASS**" : "**FAIL**"} (${f0(loadedMedian)} ms, max ${f0(Math.max(...exits(loaded)))} ms).`,
    "",
    `Per run (ms, in run order): loaded ${exits(loaded).map(f0).join(", ")}; idle ${exits(idle).map(f0).join(", ")}.`,
    "",
    "What the clients of the loaded runs saw, summed over the rounds:",
    "",
    row(["", "seen", "of"]),
    rule(3),
    row([
      "MJPEG closing delimiter `--frame--`",
      int(sum(loaded, "mjpegClosing")),
      int(LOAD.mjpeg * loaded.length),
    ]),
    row([
      "MJPEG clean end of response",
      int(sum(loaded, "mjpegClean")),
      int(LOAD.mjpeg * loaded.length),
    ]),
    row([
      "event streams ended cleanly",
      int(sum(loaded, "sseClean")),
      int(LOAD.sse * loaded.length),
    ]),
    row(["websockets closed with 1001", int(sum(loaded, "ws1001")), int(LOAD.ws * loaded.length)]),
    row([
      "invocation watcher's last status `cancelled`",
      int(loaded.filter((r) => r.clients?.watcherLastStatus === "cancelled").length),
      int(loaded.length),
    ]),
    row(["client errors", int(sum(loaded, "errors")), "0"]),
    row(["streams the server cut (not ended cleanly)", int(sum(loaded, "stillOpen")), "0"]),
    "",
    `## B. Invocation flood: ${int(FLOOD_POSTS)} POSTs, ${FLOOD_ROUNDS} rounds`,
    "",
    row([
      "cap",
      "accepted (201)",
      "refused (503)",
      "other",
      "RSS before MB",
      "RSS after MB",
      "growth MB",
      "peak MB",
      "POSTs/s",
      "SIGTERM → exit ms",
    ]),
    rule(10),
    ...flood.map((r) =>
      row([
        r.cap === "capped" ? "1000 (default)" : "none (0)",
        int(r.accepted),
        int(r.refused),
        int(r.other),
        mb(r.rssBeforeKb),
        mb(r.rssAfterKb),
        mb(r.rssAfterKb - r.rssBeforeKb),
        mb(r.peakKb),
        int((r.accepted + r.refused + r.other) / r.seconds),
        r.stopped.killed ? "killed" : f0(r.stopped.ms),
      ]),
    ),
    "",
    ...(["capped", "uncapped"] as const).map((cap) => {
      const runs = flood.filter((r) => r.cap === cap);
      return `- ${cap}: median RSS growth ${mb(median(runs.map((r) => r.rssAfterKb - r.rssBeforeKb)))} MB, median peak ${mb(median(runs.map((r) => r.peakKb)))} MB`;
    }),
    "",
  ];
  return lines.join("\n");
}

runBench("shutdown", async () => {
  const meta = startRun();
  const shutdown: ShutdownRun[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: Mode[] = round % 2 === 0 ? ["loaded", "idle"] : ["idle", "loaded"];
    for (const mode of order) {
      progress(`shutdown: round ${round + 1}/${ROUNDS}, ${mode}`);
      const run = await shutdownRun(mode);
      shutdown.push(run);
      progress(`  ${mode}: ${run.stopped.ms.toFixed(0)} ms (exit ${run.stopped.code})`);
    }
  }
  const flood: FloodRun[] = [];
  for (let round = 0; round < FLOOD_ROUNDS; round++) {
    const order: Cap[] = round % 2 === 0 ? ["capped", "uncapped"] : ["uncapped", "capped"];
    for (const cap of order) {
      progress(`flood: round ${round + 1}/${FLOOD_ROUNDS}, ${cap}`);
      flood.push(await floodRun(cap));
    }
  }
  writeReport(join(ROOT, "bench/results/shutdown.md"), report(meta(), shutdown, flood));
});
