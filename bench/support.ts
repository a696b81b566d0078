/**
 * What the benchmarks under `bench/` share: child processes (launched, read line by line,
 * stopped, and all killed on the way out whatever happens), the server's CPU time and
 * memory from /proc, statistics, markdown formatting, the environment facts at the top of
 * every report, and writing the report.
 *
 * Also the load the HTTP benches drive (autocannon runs and their latency figures) and a
 * plain HTTP client for the checks around them.
 *
 * Imported by the bench mains only (`http.ts`, `mjpeg.ts`, `actions.ts`, `observe.ts`,
 * `settings.ts`, `peers.ts`): importing it installs handlers that kill every child on
 * exit, SIGINT and SIGTERM. The children (servers and load clients) stay self-contained,
 * so the measured processes load nothing but what they measure.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type Agent, request as httpRequest } from "node:http";
import { arch, availableParallelism, cpus, loadavg, platform } from "node:os";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
// @ts-expect-error autocannon 8 ships no typings and @types/autocannon is not a dependency;
// the little used here is typed by `LoadOptions` and `AutocannonResult` below.
import autocannonUntyped from "autocannon";

/** BENCH_QUICK=1: every bench's smoke run (fewer and shorter rounds). */
export const QUICK = process.env.BENCH_QUICK === "1";

/** The repository root: every child runs there. */
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** SIGTERM → exit bound of `terminate` (unless given another), SIGKILL past it. */
export const EXIT_TIMEOUT_MS = 8_000;

// ---------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed on the way out, whatever happens

/** One stdout line of a child and when it reached the bench (`performance.now()`). */
export interface Line {
  text: string;
  atMs: number;
}

/** A child process of the bench, its stdout read line by line for its whole life. */
export interface Child {
  process: ChildProcess;
  /** For error messages. */
  name: string;
  /** Every stdout line so far; `lineEvents` emits each new one (`"line"`, Line). */
  lines: Line[];
  lineEvents: EventEmitter;
  /** The last 4000 characters of stderr. */
  stderrTail: string;
}

const children = new Set<ChildProcess>();

/**
 * Spawn `node args…` in the repository root with `env` added to the bench's. Both pipes are
 * always drained, so a chatty child never blocks on a full pipe.
 */
export function launch(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const result: Child = {
    process: child,
    name,
    lines: [],
    lineEvents: new EventEmitter(),
    stderrTail: "",
  };
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    result.stderrTail = (result.stderrTail + chunk).slice(-4000);
  });
  createInterface({ input: child.stdout! }).on("line", (text) => {
    const line: Line = { text, atMs: performance.now() };
    result.lines.push(line);
    result.lineEvents.emit("line", line);
  });
  return result;
}

/** Neither exited nor killed by a signal yet. */
export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGKILL every child still running. */
export function killAll(): void {
  for (const child of children) if (alive(child)) child.kill("SIGKILL");
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** A JSON object, or undefined for anything else (other JSON, not JSON). */
export function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first stdout line (past or future) that `match` maps to a value, and when that line
 * arrived. Rejects past `timeoutMs`, or when the child exits first (200 ms after its
 * 'exit', for lines still in the pipe).
 */
export function waitForLine<T>(
  child: Child,
  match: (line: string) => T | undefined,
  timeoutMs: number,
): Promise<{ value: T; atMs: number }> {
  for (const line of child.lines) {
    const value = match(line.text);
    if (value !== undefined) return Promise.resolve({ value, atMs: line.atMs });
  }
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error, found?: { value: T; atMs: number }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.lineEvents.off("line", onLine);
      child.process.off("exit", onExit);
      if (error) reject(error);
      else resolve(found!);
    };
    const onLine = (line: Line) => {
      const value = match(line.text);
      if (value !== undefined) finish(undefined, { value, atMs: line.atMs });
    };
    const onExit = (code: number | null, signal: string | null) => {
      setTimeout(
        () =>
          finish(new Error(`${child.name} exited (${code ?? signal})\n${child.stderrTail.trim()}`)),
        200,
      );
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(`${child.name}: no answer within ${timeoutMs} ms\n${child.stderrTail.trim()}`),
        ),
      timeoutMs,
    );
    child.lineEvents.on("line", onLine);
    child.process.once("exit", onExit);
  });
}

/** The first stdout line (past or future) that parses as a JSON object satisfying `match`. */
export async function waitForJson(
  child: Child,
  match: (record: Record<string, unknown>) => boolean,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const found = await waitForLine(
    child,
    (line) => {
      const record = parseJson(line);
      return record && match(record) ? record : undefined;
    },
    timeoutMs,
  );
  return found.value;
}

/** A server child that is listening: its URL (no trailing slash) and process id. */
export interface ServerChild {
  child: Child;
  url: string;
  pid: number;
}

/**
 * Launch a server child (as `launch`) and wait for its ready line, `{"url": …, "pid": …}`,
 * which every bench server prints once it listens.
 *
 * @example
 * ```ts
 * const server = await launchServer("actions server", ["--import", "tsx", SERVER], {}, 15_000);
 * await request(`${server.url}/bench/value`, "GET");
 * ```
 */
export async function launchServer(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  readyTimeoutMs: number,
): Promise<ServerChild> {
  const child = launch(name, args, env);
  const ready = await waitForJson(
    child,
    (record) => typeof record.url === "string" && typeof record.pid === "number",
    readyTimeoutMs,
  );
  return { child, url: String(ready.url).replace(/\/+$/, ""), pid: Number(ready.pid) };
}

/**
 * The node flags that write a CPU profile into `dir` on exit (the folder is made), or none
 * when `dir` is not set: for the `BENCH_*_CPU_PROF=<dir>` knobs.
 */
export function cpuProfileArgs(dir: string | undefined): string[] {
  if (!dir) return [];
  mkdirSync(dir, { recursive: true });
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

/** How a child ended: ms from SIGTERM to exit, its exit code, whether it had to be killed. */
export interface Stopped {
  ms: number;
  code: number | null;
  killed: boolean;
}

/** SIGTERM, wait for exit; SIGKILL past `capMs` (8 s unless given). */
export function terminate(child: Child, capMs = EXIT_TIMEOUT_MS): Promise<Stopped> {
  const started = performance.now();
  if (!alive(child.process)) {
    return Promise.resolve({ ms: 0, code: child.process.exitCode, killed: false });
  }
  return new Promise((resolve) => {
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.process.kill("SIGKILL");
    }, capMs);
    child.process.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, code, killed });
    });
    child.process.kill("SIGTERM");
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Progress on stderr: one updating line on a terminal, plain lines otherwise. */
export function progress(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${message}\x1b[K`);
  else process.stderr.write(`${message}\n`);
}

// ---------------------------------------------------------------------------------------
// Running a bench

/**
 * Run `main`; on failure print `bench:<name> failed:` and exit 1. Either way kill every
 * child, run `cleanup`, and exit (keep-alive pools and load generators may hold handles).
 */
export function runBench(name: string, main: () => Promise<void>, cleanup?: () => void): void {
  main()
    .catch((error: unknown) => {
      console.error(`bench:${name} failed:`, error);
      process.exitCode = 1;
    })
    .finally(() => {
      killAll();
      cleanup?.();
      process.exit();
    });
}

/** Past `ms`, print `message`, kill every child and exit 1. Does not keep the process up. */
export function watchdog(ms: number, message: string): void {
  setTimeout(() => {
    console.error(message);
    killAll();
    process.exit(1);
  }, ms).unref();
}

/** Print the report (clearing the progress line) and write it to `file`. */
export function writeReport(file: string, markdown: string): void {
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  console.log(markdown);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, markdown);
  console.log(`written to ${file}`);
}

// ---------------------------------------------------------------------------------------
// labthings-ts against a bare node:http server, run by run

/** The two servers a bench compares. */
export type Kind = "labthings" | "bare";
export type ByKind<T> = Record<Kind, T>;
export const KINDS: readonly Kind[] = ["labthings", "bare"];
export const LABEL: ByKind<string> = { labthings: "labthings-ts", bare: "node:http" };

/** The order of the servers in round `round`: flipped every round, so drift hits both. */
export function kindsInOrder(round: number): readonly Kind[] {
  return round % 2 === 0 ? KINDS : [...KINDS].reverse();
}

// ---------------------------------------------------------------------------------------
// A process, from /proc

/** Clock ticks per second (`getconf CLK_TCK`, 100 if that fails), for /proc/<pid>/stat. */
export const clockTicks = (() => {
  let ticks: number | undefined;
  return (): number => {
    if (ticks === undefined) {
      try {
        ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
      } catch {
        ticks = 100;
      }
    }
    return ticks;
  };
})();

/**
 * CPU time of the whole process (every thread), ms: the sum of
 * /proc/<pid>/task/<tid>/schedstat run times (ns), or user + system ticks of
 * /proc/<pid>/stat where schedstat is missing.
 */
export function cpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ")[0]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    if (ns > 0) return ns / 1e6;
  } catch {
    // No schedstat (kernel without CONFIG_SCHEDSTATS): ticks below.
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  // Fields after the command name (which may hold spaces): state is [0], utime [11], stime [12].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
}

/** /proc/<pid>/status: resident and peak resident memory, kB. Throws once the process is gone. */
export function memory(pid: number): { rssKb: number; hwmKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]),
    hwmKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]),
  };
}

/** Resident memory, kB; NaN once the process is gone. */
export function rssKb(pid: number): number {
  try {
    return memory(pid).rssKb;
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------
// Statistics

/** Median (mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile `p` (0–100) of ascending `sorted`; NaN for none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Count, p50, p99 and max of `values`. */
export function summary(values: readonly number[]): {
  n: number;
  p50: number;
  p99: number;
  max: number;
} {
  const sorted = Float64Array.from(values).sort();
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** A growing list of samples (e.g. every response time), kept in one Float64Array. */
export class Samples {
  #values = new Float64Array(1 << 16);
  count = 0;

  push(value: number): void {
    if (this.count === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.count++] = value;
  }

  /** The samples so far, ascending (sorted in place). */
  sorted(): Float64Array {
    return this.#values.subarray(0, this.count).sort();
  }
}

// ---------------------------------------------------------------------------------------
// Markdown

/** Whole number with thousands separators; "–" when not finite. */
export const int = (n: number) =>
  Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
/** Milliseconds: 1 decimal from 10 up, 2 below; "–" for NaN. */
export const ms = (n: number) => (Number.isNaN(n) ? "–" : n >= 10 ? n.toFixed(1) : n.toFixed(2));
/** kB as MB, 1 decimal; "–" when not finite. */
export const mb = (kb: number) => (Number.isFinite(kb) ? (kb / 1024).toFixed(1) : "–");
/** One markdown table row. */
export const row = (cells: readonly (string | number)[]) => `| ${cells.join(" | ")} |`;
/** The header rule of an `n`-column markdown table. */
export const rule = (n: number) => row(Array.from({ length: n }, () => "---"));

// ---------------------------------------------------------------------------------------
// The environment at the top of every report

/** `nproc` (what the process may use), or Node's `availableParallelism()`. */
export function nproc(): string {
  try {
    return execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {
    return String(availableParallelism());
  }
}

/** The model name of the first CPU. */
export function cpuModel(): string {
  return cpus()[0]?.model.trim() ?? "unknown";
}

/** Wall time and load average of a whole run; `meta()` at the end of it. */
export interface RunMeta {
  totalSeconds: number;
  loadBefore: number[];
  loadAfter: number[];
}

/** Start timing the run: returns a function giving its `RunMeta` so far. */
export function startRun(): () => RunMeta {
  const began = performance.now();
  const loadBefore = loadavg();
  return () => ({
    totalSeconds: (performance.now() - began) / 1000,
    loadBefore,
    loadAfter: loadavg(),
  });
}

/** `- Date: …` (now, ISO). */
export function dateLine(): string {
  return `- Date: ${new Date().toISOString()}`;
}

/** `- Load average (1 min) before/after: …; whole run N s`. */
export function loadLine(meta: RunMeta): string {
  return `- Load average (1 min) before/after: ${meta.loadBefore[0]!.toFixed(2)} / ${meta.loadAfter[0]!.toFixed(2)}; whole run ${meta.totalSeconds.toFixed(0)} s`;
}

/** Date, Node, platform, nproc, CPU model, load average and run time: three list items. */
export function environmentLines(meta: RunMeta): string[] {
  return [
    dateLine(),
    `- Node ${process.version} on ${platform()}/${arch()}, nproc ${nproc()}, CPU ${cpuModel()}`,
    loadLine(meta),
  ];
}

// ---------------------------------------------------------------------------------------
// Plain HTTP: the checks before and around the load, and the low-rate clients

/** An answer read whole. */
export interface Answer {
  status: number;
  body: string;
}

/**
 * One request with an optional JSON body, its answer read whole; rejects past `timeoutMs`
 * (10 s unless given). `agent` for keep-alive (the default: Node's global agent).
 *
 * @example
 * ```ts
 * const answer = await request(`${url}/bench/sleep`, "POST", { json: { ms: 20 }, agent });
 * ```
 */
export function request(
  url: string,
  method: "GET" | "PUT" | "POST" | "DELETE",
  options: { json?: unknown; agent?: Agent; timeoutMs?: number } = {},
): Promise<Answer> {
  const { json, agent, timeoutMs = 10_000 } = options;
  const body = json === undefined ? undefined : JSON.stringify(json);
  const headers: Record<string, string | number> =
    body !== undefined
      ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
      : method === "POST" || method === "PUT"
        ? { "content-length": 0 } // an empty body said as such, not chunked
        : {};
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        data += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------
// Load: autocannon, typed as far as used (its README "Results", options and events)

interface Histogram {
  average: number;
  p50: number;
  p97_5: number;
  p99: number;
}
export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  "2xx": number;
  latency: Histogram;
  requests: Histogram & { total: number; sent: number };
}
type AutocannonInstance = EventEmitter & PromiseLike<AutocannonResult>;

/** What one autocannon run sends: one request over and over, or `requests` in turn. */
export interface LoadOptions {
  url: string;
  method?: string;
  connections: number;
  pipelining: number;
  /** Seconds. */
  duration: number;
  /** Stop after this many requests (within `duration`). */
  amount?: number;
  /** Seconds per request; 10 unless given. */
  timeout?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Its `requests` option: `setupRequest` may change each request (e.g. a new body). */
  requests?: {
    method: string;
    path: string;
    headers: Record<string, string>;
    setupRequest: (request: Record<string, unknown>) => Record<string, unknown>;
  }[];
}

const autocannon = autocannonUntyped as (options: LoadOptions) => AutocannonInstance;

/** One run's figures, over the answers of the expected status. */
export interface LoadRun {
  /** Expected answers per second. */
  rps: number;
  /** Latency of those answers, ms, from every response time (sub-ms). */
  p50: number;
  p99: number;
  /** Server CPU per expected answer, µs (all its threads); NaN without a server pid. */
  cpuUs: number;
  /** Connection errors and timeouts. */
  errors: number;
  /** Answers with another status. */
  wrongStatus: number;
}

/** The "errors / wrong status" cell of a report: both summed over `runs`. */
export function failuresCell(runs: readonly LoadRun[]): string {
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  return `${errors} / ${runs.reduce((n, r) => n + r.wrongStatus, 0)}`;
}

/**
 * Run autocannon once. Latency percentiles come from every response time of an expected
 * answer (autocannon's own histogram has whole milliseconds only); with `serverPid`, the
 * server's CPU time over the run is read from /proc. Also returns the expected answers'
 * count and autocannon's own result.
 *
 * @example
 * ```ts
 * const { run } = await runLoad(
 *   { url: `${server.url}/bench/value`, connections: 10, pipelining: 1, duration: 3 },
 *   { expected: (status) => status === 200, serverPid: server.pid },
 * );
 * console.log(`${int(run.rps)} req/s, p99 ${ms(run.p99)} ms`);
 * ```
 */
export async function runLoad(
  options: LoadOptions,
  measure: { expected: (status: number) => boolean; serverPid?: number },
): Promise<{ run: LoadRun; answered: number; result: AutocannonResult }> {
  const { serverPid } = measure;
  const times = new Samples();
  let wrongStatus = 0;
  const cpuBefore = serverPid === undefined ? Number.NaN : cpuMs(serverPid);
  const instance = autocannon({ timeout: 10, ...options });
  instance.on("response", (_client: unknown, status: number, _bytes: number, time: number) => {
    if (measure.expected(status)) times.push(time);
    else wrongStatus++;
  });
  const result = await instance;
  const cpu = serverPid === undefined ? Number.NaN : cpuMs(serverPid) - cpuBefore;
  const answered = times.count;
  const sorted = times.sorted();
  const run: LoadRun = {
    rps: answered / result.duration,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpuUs: answered ? (cpu * 1000) / answered : Number.NaN,
    errors: result.errors + result.timeouts,
    wrongStatus,
  };
  return { run, answered, result };
}

/** One request a server is driven with, and the status that counts as answered. */
export interface Endpoint {
  method: "GET" | "PUT" | "POST";
  path: string;
  status: number;
  /** The JSON body, if any. */
  json?: unknown;
}

/**
 * `runLoad` of one endpoint of a server child, its CPU time included.
 *
 * @example
 * ```ts
 * const endpoint = { method: "GET", path: "/bench/value", status: 200 } as const;
 * const run = await driveEndpoint(server, endpoint, { connections: 10, pipelining: 1, duration: 3 });
 * ```
 */
export async function driveEndpoint(
  server: ServerChild,
  endpoint: Endpoint,
  load: { connections: number; pipelining: number; duration: number },
): Promise<LoadRun> {
  const body =
    endpoint.json === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(endpoint.json) };
  const { run } = await runLoad(
    { url: server.url + endpoint.path, method: endpoint.method, ...load, ...body },
    { expected: (status) => status === endpoint.status, serverPid: server.pid },
  );
  return run;
}

/** The installed version of package `name` (e.g. "autocannon"), for the report. */
export function packageVersion(name: string): string {
  const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}
