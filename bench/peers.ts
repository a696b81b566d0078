/**
 * `npm run bench:peers`: labthings-ts against node-wot (Eclipse Thingweb's TypeScript WoT
 * runtime, `@node-wot/binding-http`'s HttpServer), serving the same Thing in one run.
 *
 * Children, each its own process on 127.0.0.1: `bench/peers-labthings-server.ts` (a
 * ThingServer from `dist/`) and `bench/peers-node-wot-server.ts` (a Servient with an
 * HttpServer, `produce` / `expose`), both serving `bench/peers-thing.ts`: a read-only
 * number, a writable number (validated), a read-only object and a no-op action.
 *
 * 1. Throughput and latency: autocannon (same connections, pipelining and duration for
 *    both) drives each operation on each server: property read (number, object), property
 *    write (PUT with a JSON body), action invocation (POST). Ours twice: the default
 *    asynchronous action (201 + ActionStatus) and a `synchronous: true` one (204 when
 *    done); node-wot's action is synchronous (its POST answers when the handler returns),
 *    so the synchronous row is the like-for-like one. A warm-up per operation and server,
 *    then rounds; within a round the two servers run back to back per operation, in an
 *    order flipped every round. Medians over the rounds of req/s and of each round's
 *    p50/p99 (from every response time: autocannon's own histogram has whole ms only).
 * 2. Shutdown with an observer: a fresh child per measurement, one observer connected
 *    (ours: an SSE observeproperty response; node-wot: its observeproperty long-poll,
 *    `GET …/properties/setpoint/observable`, which answers at the next change), then
 *    SIGTERM; time to process exit measured here. Each child shuts down as its users'
 *    code does (ours `server.close()`, node-wot `servient.shutdown()`); past a cap the
 *    child is killed and recorded as "> cap (killed)". The same without any client, as a
 *    reference.
 *
 * Prints a markdown table and writes it to `bench/results/peers.md`. Every child is killed
 * at the end, on error and on Ctrl-C; a watchdog bounds the run. Knobs (env):
 * BENCH_QUICK=1 for a smoke run, BENCH_PEERS_CPU_PROF=<dir> to run the throughput children
 * with `--cpu-prof` into <dir> (profiles are written on their exit).
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { fileURLToPath } from "node:url";
import { BENCH_THING, INITIAL, WRITTEN_SETPOINT } from "./peers-thing.js";
import {
  type Child,
  cpuProfileArgs,
  driveEndpoint,
  type Endpoint,
  environmentLines,
  failuresCell,
  int,
  type LoadRun,
  launchServer,
  median,
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
  type Stopped,
  sleep,
  startRun,
  terminate,
  waitForJson,
  watchdog,
  writeReport,
} from "./support.js";

// ---------------------------------------------------------------------------------------
// Configuration

const CONNECTIONS = 10;
const PIPELINING = 1;
const WARMUP_SECONDS = 1;
const ROUNDS = QUICK ? 1 : 3;
const ROUND_SECONDS = QUICK ? 1 : 3;
const SHUTDOWN_ROUNDS = QUICK ? 1 : 3;
/** SIGTERM → exit bound; past it the child is SIGKILLed and recorded as "> cap (killed)". */
const SHUTDOWN_CAP_MS = 10_000;
/** After the observer is connected, before SIGTERM: let both servers settle alike. */
const OBSERVER_SETTLE_MS = 100;
const READY_TIMEOUT_MS = 20_000;
/** The whole run; far above its ~2.5 minutes, so only a hang trips it. */
const WATCHDOG_MS = 8 * 60_000;
const CPU_PROF_DIR = process.env.BENCH_PEERS_CPU_PROF;

const RESULTS = fileURLToPath(new URL("./results/peers.md", import.meta.url));

type Peer = "labthings" | "nodeWot";
const PEERS: readonly Peer[] = ["labthings", "nodeWot"];
const NAME: Record<Peer, string> = { labthings: "labthings-ts", nodeWot: "node-wot" };
const SCRIPT: Record<Peer, string> = {
  labthings: fileURLToPath(new URL("./peers-labthings-server.ts", import.meta.url)),
  nodeWot: fileURLToPath(new URL("./peers-node-wot-server.ts", import.meta.url)),
};
const VERSION = {
  nodeWot: packageVersion("@node-wot/binding-http"),
  fastify: packageVersion("fastify"),
};

/** The order of the peers in round `round`: flipped every round, so drift hits both. */
const peersInOrder = (round: number): readonly Peer[] =>
  round % 2 === 0 ? PEERS : [...PEERS].reverse();

/** A row of the report: one operation, the request each server is driven with. */
interface Operation {
  key: string;
  label: string;
  labthings: Endpoint;
  nodeWot: Endpoint;
  note?: string;
}

const WRITE_BODY = JSON.stringify(WRITTEN_SETPOINT);
const NODE_WOT_NOOP: Endpoint = { method: "POST", path: "/bench/actions/noop", status: 204 };

const OPERATIONS: readonly Operation[] = [
  {
    key: "readNumber",
    label: "read a number property",
    labthings: { method: "GET", path: "/bench/count", status: 200 },
    nodeWot: { method: "GET", path: "/bench/properties/count", status: 200 },
  },
  {
    key: "readObject",
    label: "read an object property",
    labthings: { method: "GET", path: "/bench/position", status: 200 },
    nodeWot: { method: "GET", path: "/bench/properties/position", status: 200 },
  },
  {
    key: "write",
    label: "write a number property (PUT, validated)",
    labthings: { method: "PUT", path: "/bench/setpoint", status: 204, json: WRITTEN_SETPOINT },
    nodeWot: {
      method: "PUT",
      path: "/bench/properties/setpoint",
      status: 204,
      json: WRITTEN_SETPOINT,
    },
  },
  {
    key: "invokeSync",
    label: "invoke a no-op action, synchronous (comparable)",
    labthings: { method: "POST", path: "/bench/noopSync", status: 204 },
    nodeWot: NODE_WOT_NOOP,
    note: "both answer 204 when the action has run",
  },
  {
    key: "invokeAsync",
    label: "invoke a no-op action, ours asynchronous (default)",
    labthings: { method: "POST", path: "/bench/noop", status: 201 },
    nodeWot: NODE_WOT_NOOP,
    note: "ours answers 201 + an ActionStatus that can be queried and cancelled; node-wot's row is the same synchronous POST",
  },
];

// ---------------------------------------------------------------------------------------
// The servers

interface Server extends ServerChild {
  peer: Peer;
}

async function startServer(peer: Peer, profile = false): Promise<Server> {
  const args = [...(profile ? cpuProfileArgs(CPU_PROF_DIR) : []), "--import", "tsx", SCRIPT[peer]];
  const server = await launchServer(`${NAME[peer]} server`, args, { DEBUG: "" }, READY_TIMEOUT_MS);
  return { ...server, peer };
}

// ---------------------------------------------------------------------------------------
// Plain HTTP (the checks before measuring, and the observers)

/**
 * Before measuring: every endpoint answers the status it is counted with, both servers
 * answer reads with the same JSON, a write changes the value, and a write breaking the
 * schema is refused and changes nothing.
 */
async function checkEquivalent(servers: Record<Peer, Server>): Promise<void> {
  const read: Record<string, Partial<Record<Peer, unknown>>> = {};
  for (const operation of OPERATIONS) {
    for (const peer of PEERS) {
      const endpoint = operation[peer];
      const answer = await request(servers[peer].url + endpoint.path, endpoint.method, {
        json: endpoint.json,
      });
      if (answer.status !== endpoint.status) {
        throw new Error(
          `${NAME[peer]} ${endpoint.method} ${endpoint.path}: ${answer.status} ${answer.body}`,
        );
      }
      if (endpoint.method === "GET") {
        read[operation.key] = { ...read[operation.key], [peer]: JSON.parse(answer.body) };
      }
    }
  }
  for (const [key, values] of Object.entries(read)) {
    if (JSON.stringify(values.labthings) !== JSON.stringify(values.nodeWot)) {
      throw new Error(`the servers answer ${key} differently: ${JSON.stringify(values)}`);
    }
  }
  const setpoint = { labthings: "/bench/setpoint", nodeWot: "/bench/properties/setpoint" };
  for (const peer of PEERS) {
    const url = servers[peer].url + setpoint[peer];
    const refused = await request(url, "PUT", { json: BENCH_THING.setpoint.maximum + 1 });
    const after = JSON.parse((await request(url, "GET")).body) as number;
    if (refused.status < 400 || after !== WRITTEN_SETPOINT) {
      throw new Error(`${NAME[peer]} took an invalid write: ${refused.status}, now ${after}`);
    }
  }
}

/**
 * One observer of `setpoint`: an open response that stays open until the server ends it.
 * `connected` resolves once the server has it (ours: the SSE response has started;
 * node-wot's long-poll answers nothing until a change, so its child's `{"observers"}`
 * line says when its observe handler ran); `ended` says how the response finished.
 */
interface Observer {
  connected: Promise<void>;
  ending: () => "clean end" | "reset" | "still open";
  close: () => void;
}

function observe(server: Server): Observer {
  const path =
    server.peer === "labthings" ? "/bench/setpoint" : "/bench/properties/setpoint/observable";
  const headers = server.peer === "labthings" ? { accept: "text/event-stream" } : {};
  let state: "clean end" | "reset" | "still open" = "still open";
  let response: IncomingMessage | undefined;
  const req = httpRequest(server.url + path, { headers, agent: false });
  const responded = new Promise<void>((resolve, reject) => {
    req.on("response", (res) => {
      response = res;
      res.resume();
      res.on("end", () => {
        state = "clean end";
      });
      res.on("error", () => {
        if (state === "still open") state = "reset";
      });
      res.on("aborted", () => {
        if (state === "still open") state = "reset";
      });
      if (res.statusCode === 200) resolve();
      else reject(new Error(`observe on ${NAME[server.peer]}: ${res.statusCode}`));
    });
    req.on("error", (error) => {
      if (state === "still open") state = "reset";
      reject(error);
    });
  });
  responded.catch(() => {});
  req.end();
  const connected =
    server.peer === "labthings"
      ? responded
      : waitForJson(server.child, (record) => record.observers === 1, READY_TIMEOUT_MS).then(
          () => undefined,
        );
  return {
    connected,
    ending: () => state,
    close: () => {
      response?.destroy();
      req.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------
// Part 1: throughput and latency

/** One autocannon run of one endpoint on one server. */
type Run = LoadRun;

function drive(server: Server, endpoint: Endpoint, seconds: number): Promise<Run> {
  return driveEndpoint(server, endpoint, {
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration: seconds,
  });
}

/** Runs per operation key and peer, in run order. */
type Throughput = Record<string, Record<Peer, Run[]>>;

/** The distinct endpoints of a peer (node-wot's action serves two rows: run it once). */
function endpointsOf(peer: Peer): Map<string, Endpoint> {
  const endpoints = new Map<string, Endpoint>();
  for (const operation of OPERATIONS) {
    const endpoint = operation[peer];
    endpoints.set(`${endpoint.method} ${endpoint.path}`, endpoint);
  }
  return endpoints;
}

async function measureThroughput(servers: Record<Peer, Server>): Promise<Throughput> {
  for (const peer of PEERS) {
    for (const [name, endpoint] of endpointsOf(peer)) {
      progress(`${NAME[peer]} ${name}: warm-up`);
      await drive(servers[peer], endpoint, WARMUP_SECONDS);
    }
  }
  const byEndpoint: Record<Peer, Map<string, Run[]>> = { labthings: new Map(), nodeWot: new Map() };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, operation] of OPERATIONS.entries()) {
      // Flip the peers' order per round and per operation, so drift hits both alike.
      for (const peer of peersInOrder(round + index)) {
        const endpoint = operation[peer];
        const name = `${endpoint.method} ${endpoint.path}`;
        const runs = byEndpoint[peer].get(name) ?? [];
        if (runs.length > round) continue; // node-wot's shared action: once per round
        progress(`round ${round + 1}/${ROUNDS}: ${NAME[peer]} ${name}`);
        runs.push(await drive(servers[peer], endpoint, ROUND_SECONDS));
        byEndpoint[peer].set(name, runs);
      }
    }
  }
  const result: Throughput = {};
  for (const operation of OPERATIONS) {
    result[operation.key] = {
      labthings: byEndpoint.labthings.get(
        `${operation.labthings.method} ${operation.labthings.path}`,
      )!,
      nodeWot: byEndpoint.nodeWot.get(`${operation.nodeWot.method} ${operation.nodeWot.path}`)!,
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Part 2: shutdown

interface ShutdownRun extends Stopped {
  /** How the observer's response ended (none: no observer). */
  observer?: "clean end" | "reset" | "still open";
  /** The server's own shutdown (`{"shutdown": {"durationMs"}}` of the child), ms. */
  closeMs?: number;
}

/** The `durationMs` of the child's `{"shutdown"}` line, if it printed one. */
function closeMsOf(child: Child): number | undefined {
  for (const line of child.lines) {
    const shutdown = parseJson(line.text)?.shutdown as { durationMs?: unknown } | undefined;
    if (typeof shutdown?.durationMs === "number") return shutdown.durationMs;
  }
  return undefined;
}

async function shutdownOnce(peer: Peer, withObserver: boolean): Promise<ShutdownRun> {
  const server = await startServer(peer);
  const observer = withObserver ? observe(server) : undefined;
  try {
    if (observer) {
      await observer.connected;
      await sleep(OBSERVER_SETTLE_MS);
    }
    const stopped = await terminate(server.child, SHUTDOWN_CAP_MS);
    await sleep(50); // the observer's socket events, the child's last stdout lines
    return {
      ...stopped,
      closeMs: closeMsOf(server.child),
      ...(observer ? { observer: observer.ending() } : {}),
    };
  } finally {
    observer?.close();
  }
}

type Shutdown = Record<"observer" | "idle", Record<Peer, ShutdownRun[]>>;

async function measureShutdown(): Promise<Shutdown> {
  const result: Shutdown = {
    observer: { labthings: [], nodeWot: [] },
    idle: { labthings: [], nodeWot: [] },
  };
  for (let round = 0; round < SHUTDOWN_ROUNDS; round++) {
    for (const peer of peersInOrder(round)) {
      progress(`shutdown ${round + 1}/${SHUTDOWN_ROUNDS}: ${NAME[peer]}, no client`);
      result.idle[peer].push(await shutdownOnce(peer, false));
      progress(`shutdown ${round + 1}/${SHUTDOWN_ROUNDS}: ${NAME[peer]}, one observer`);
      result.observer[peer].push(await shutdownOnce(peer, true));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Report

const ratio = (ours: number, theirs: number) =>
  Number.isFinite(ours) && Number.isFinite(theirs) && theirs > 0 ? (ours / theirs).toFixed(2) : "–";

/** Median of a shutdown series, or "> cap (killed)" when the median run was killed. */
function shutdownCell(runs: readonly ShutdownRun[]): { text: string; ms: number; capped: boolean } {
  const killed = runs.filter((r) => r.killed).length;
  if (killed * 2 > runs.length) {
    return { text: `> ${SHUTDOWN_CAP_MS / 1000} s (killed)`, ms: SHUTDOWN_CAP_MS, capped: true };
  }
  const value = median(runs.map((r) => (r.killed ? Number.POSITIVE_INFINITY : r.ms)));
  return { text: `${ms(value)} ms`, ms: value, capped: false };
}

function shutdownRatio(ours: ReturnType<typeof shutdownCell>, theirs: typeof ours): string {
  if (ours.capped) return "–";
  if (theirs.capped) return `< ${(ours.ms / theirs.ms).toPrecision(1)}`;
  return ratio(ours.ms, theirs.ms);
}

/** The comparison table (also what goes into the README). */
function summaryTable(throughput: Throughput, shutdown: Shutdown): string[] {
  const lines = [
    row([
      "operation",
      "labthings-ts req/s",
      "node-wot req/s",
      "ratio (↑ better)",
      "labthings-ts p50 / p99 ms",
      "node-wot p50 / p99 ms",
      "ratio p50 / p99 (↓ better)",
      "server CPU µs/req, labthings-ts / node-wot",
    ]),
    rule(8),
  ];
  for (const operation of OPERATIONS) {
    const runs = throughput[operation.key]!;
    const med = (peer: Peer, key: keyof Run) => median(runs[peer].map((r) => r[key]));
    lines.push(
      row([
        operation.label,
        int(med("labthings", "rps")),
        int(med("nodeWot", "rps")),
        `**${ratio(med("labthings", "rps"), med("nodeWot", "rps"))}**`,
        `${ms(med("labthings", "p50"))} / ${ms(med("labthings", "p99"))}`,
        `${ms(med("nodeWot", "p50"))} / ${ms(med("nodeWot", "p99"))}`,
        `${ratio(med("labthings", "p50"), med("nodeWot", "p50"))} / ${ratio(med("labthings", "p99"), med("nodeWot", "p99"))}`,
        `${int(med("labthings", "cpuUs"))} / ${int(med("nodeWot", "cpuUs"))}`,
      ]),
    );
  }
  lines.push(
    "",
    row([
      "SIGTERM → process exit",
      "labthings-ts",
      "node-wot",
      "ratio (↓ better)",
      "observer's response",
    ]),
    rule(5),
  );
  for (const [key, label] of [
    ["observer", "one observer connected"],
    ["idle", "no client connected (reference)"],
  ] as const) {
    const ours = shutdownCell(shutdown[key].labthings);
    const theirs = shutdownCell(shutdown[key].nodeWot);
    const endings = (peer: Peer) =>
      [...new Set(shutdown[key][peer].map((r) => r.observer ?? "–"))].join(", ");
    lines.push(
      row([
        label,
        ours.text,
        theirs.text,
        `**${shutdownRatio(ours, theirs)}**`,
        key === "observer" ? `ours: ${endings("labthings")}; node-wot: ${endings("nodeWot")}` : "–",
      ]),
    );
  }
  return lines;
}

/** The rows (and columns) where labthings-ts is behind node-wot in this run. */
function behind(throughput: Throughput, shutdown: Shutdown): string[] {
  const found: string[] = [];
  for (const operation of OPERATIONS) {
    const runs = throughput[operation.key]!;
    const med = (peer: Peer, key: keyof Run) => median(runs[peer].map((r) => r[key]));
    if (med("labthings", "rps") < med("nodeWot", "rps")) found.push(`${operation.label}: req/s`);
    for (const key of ["p50", "p99"] as const) {
      if (med("labthings", key) > med("nodeWot", key)) found.push(`${operation.label}: ${key}`);
    }
  }
  const ours = shutdownCell(shutdown.observer.labthings);
  const theirs = shutdownCell(shutdown.observer.nodeWot);
  if (ours.capped || (!theirs.capped && ours.ms > theirs.ms)) {
    found.push("shutdown with one observer");
  }
  return found;
}

function report(throughput: Throughput, shutdown: Shutdown, meta: RunMeta): string {
  const lines: string[] = ["# labthings-ts vs node-wot: the same Thing, the same load", ""];
  lines.push(...environmentLines(meta));
  lines.push(
    "- **All figures are medians on a shared 2-core machine**: the load client (autocannon) runs in the bench process on the same cores as the server. Read the ratios more than the absolute numbers.",
    `- labthings-ts: \`node --import tsx bench/peers-labthings-server.ts\`, a \`ThingServer\` from \`dist/\` (Fastify ${VERSION.fastify}). node-wot: \`node --import tsx bench/peers-node-wot-server.ts\`, \`@node-wot/core\` + \`@node-wot/binding-http\` ${VERSION.nodeWot} (\`Servient\`, \`HttpServer\`, \`produce\` / \`expose\`, a read handler per property, a write handler reading the value with \`InteractionOutput.value()\`, which validates it against the schema, then \`emitPropertyChange\`). Both on 127.0.0.1, each in its own process.`,
    `- The Thing (\`bench/peers-thing.ts\`): \`count\` (read-only number ${INITIAL.count}), \`setpoint\` (writable number, 0–1000), \`position\` (read-only object \`{ x, y, z }\`), \`noop\` (an action that does nothing). Before measuring, both servers are checked to answer the same JSON, to apply a write, and to refuse a write that breaks the schema (ours: 400 Problem Details; node-wot: 500 with a text body).`,
    "",
    "## Summary",
    "",
    "Ratio = labthings-ts ÷ node-wot. For req/s higher is better (ratio > 1: labthings-ts ahead); for latency and shutdown time lower is better (ratio < 1: labthings-ts ahead).",
    "",
    ...summaryTable(throughput, shutdown),
    "",
    ((rows) =>
      rows.length === 0
        ? "labthings-ts is ahead on every row (the no-client shutdown is a reference, not a target)."
        : `labthings-ts is behind on: ${rows.join("; ")}.`)(behind(throughput, shutdown)),
    "",
    "The synchronous action row is the like-for-like one: node-wot's POST runs the handler and answers when it returns, as our `synchronous: true` actions do. Our default (asynchronous) POST does more: it creates an invocation the client can query (`GET /action_invocations/{id}`) and cancel, and answers 201 with its ActionStatus and `Location`; node-wot has no such thing (its client cannot query or cancel an action).",
    "",
    "## Method",
    "",
    `autocannon ${packageVersion("autocannon")}, ${CONNECTIONS} connections, pipelining ${PIPELINING}, for both servers; a ${WARMUP_SECONDS} s warm-up per endpoint and server, then ${ROUNDS} rounds × ${ROUND_SECONDS} s per endpoint; in each round the two servers run back to back per operation, in an order flipped per operation and per round. Latency percentiles from every response time (autocannon's histogram has whole milliseconds only), per round; the tables show medians over the rounds. Server CPU = run time of all the server process's threads over the round (/proc/<pid>/task/*/schedstat) per answered request. Writes PUT \`${WRITE_BODY}\` with \`Content-Type: application/json\`; node-wot's no-op action runs once per round and serves both action rows.`,
    "",
    `Shutdown: ${SHUTDOWN_ROUNDS} rounds, a fresh server process per measurement (orders flipped per round). With one observer: ours an SSE observeproperty response (\`GET /bench/setpoint\`, \`Accept: text/event-stream\`; connected once its headers arrive), node-wot its observeproperty long-poll (\`GET /bench/properties/setpoint/observable\`: node-wot's HttpServer answers it at the next change, so nothing arrives before; connected once node-wot's observe handler ran), then ${OBSERVER_SETTLE_MS} ms, then SIGTERM. The time is SIGTERM → process exit, measured by this process. Each server runs its own shutdown on SIGTERM: ours \`server.close()\`, node-wot \`servient.shutdown()\` (which calls \`HttpServer.stop()\`, a plain \`http.Server.close()\`: it waits for every open response, and a long-poll with no change waits up to node-wot's 1 h socket timeout). Past ${SHUTDOWN_CAP_MS / 1000} s the child is SIGKILLed and recorded as killed.`,
    "",
    "## Per round",
    "",
    row([
      "operation",
      "server",
      "req/s",
      "p50 / p99 ms",
      "server CPU µs/req",
      "errors / wrong status",
    ]),
    rule(6),
  );
  for (const operation of OPERATIONS) {
    for (const peer of PEERS) {
      const runs = throughput[operation.key]![peer];
      lines.push(
        row([
          operation.label,
          NAME[peer],
          runs.map((r) => int(r.rps)).join(", "),
          runs.map((r) => `${ms(r.p50)} / ${ms(r.p99)}`).join(", "),
          runs.map((r) => int(r.cpuUs)).join(", "),
          failuresCell(runs),
        ]),
      );
    }
  }
  lines.push(
    "",
    row([
      "shutdown",
      "server",
      "SIGTERM → exit, per round",
      "of which the server's own shutdown (its log)",
      "exit code",
    ]),
    rule(5),
  );
  for (const [key, label] of [
    ["observer", "one observer"],
    ["idle", "no client"],
  ] as const) {
    for (const peer of PEERS) {
      const runs = shutdown[key][peer];
      lines.push(
        row([
          label,
          NAME[peer],
          runs.map((r) => (r.killed ? "killed" : `${ms(r.ms)} ms`)).join(", "),
          runs.map((r) => (r.closeMs === undefined ? "–" : `${ms(r.closeMs)} ms`)).join(", "),
          runs.map((r) => (r.killed ? "SIGKILL" : String(r.code))).join(", "),
        ]),
      );
    }
  }
  lines.push("");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  watchdog(WATCHDOG_MS, `bench:peers: still running after ${WATCHDOG_MS / 1000} s, giving up`);
  const run = startRun();

  const servers = {
    labthings: await startServer("labthings", true),
    nodeWot: await startServer("nodeWot", true),
  };
  await checkEquivalent(servers);
  const throughput = await measureThroughput(servers);
  // Profiles are written on a clean exit; node-wot's has no open response now, so it stops.
  await Promise.all(PEERS.map((peer) => terminate(servers[peer].child, SHUTDOWN_CAP_MS)));

  const shutdown = await measureShutdown();
  writeReport(RESULTS, report(throughput, shutdown, run()));
}

runBench("peers", main);
