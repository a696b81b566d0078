/**
 * Property-based fuzzing of the simulated microscope's HTTP surface (issue 6, item 6).
 * fast-check draws requests from the live Thing Descriptions (real paths, bodies valid
 * for their schemas or just outside them) and from noise (junk methods, mangled paths,
 * odd headers, broken bodies, bad framing), and each is written byte for byte on a raw
 * socket. For every case:
 *
 * - the response is well-formed HTTP/1.1 (test/support/wire-exchange.ts says how strict);
 * - every 4xx/5xx is `application/problem+json` whose `status` is the HTTP status, with a
 *   `title` and a `type`, and no stack trace;
 * - no 5xx but the declared one: 503 `tag:labthings-ts,2026:unavailable` (README: while
 *   shutting down, a stream that is full or has no frame yet, a Thing that failed to
 *   start). A 500 is always a bug;
 * - the server still answers (the stage's TD) after it;
 * - a rejected request (≥ 400, or no response) changed no property of any Thing and no
 *   settings file; nothing changes between cases either. Accepted requests may change
 *   state: their invocations are cancelled and awaited and settings flushed first.
 *
 * Responses written by Node itself, before any of the server's code runs, are the
 * exceptions, each matched exactly in `nodeWritten`:
 * - `CONNECT`: Node's HTTP server hands it to a `connect` listener; with none it closes
 *   the socket without a response;
 * - a request without `Host`: Node answers 400 with an empty body (`requireHostHeader`);
 * - `Expect:` other than `100-continue`: Node answers 417 with an empty body.
 *
 * FUZZ_SEED and FUZZ_RUNS in the environment change the seed and the number of cases;
 * a failure prints the seed and the request.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Autofocus, SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import {
  type FuzzRequest,
  fuzzRequest,
  type HttpSurface,
  isSingleRequest,
  serializeRequest,
  surfaceFromDescriptions,
} from "./support/fuzz-requests.js";
import { getJson } from "./support/json-http.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import {
  type ExchangeResult,
  exchange,
  headerOf,
  printable,
  trailingViolation,
  type WireResponse,
} from "./support/wire-exchange.js";
import { within } from "./support/within.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20260601);
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 400);
/** Wall-clock bound on the cases, so a loaded machine runs fewer rather than timing out. */
const TIME_LIMIT_MS = 25_000;
/** Fewer cases than this within the time limit would not be a fuzz run worth the name. */
const MIN_CASES = 50;
/** Bound on one request/response exchange. */
const EXCHANGE_MS = 5_000;

/** The only 5xx the server may answer (README "HTTP API"). */
const DECLARED_5XX = new Map([[503, "tag:labthings-ts,2026:unavailable"]]);

/** The camera's frame size: fuzzed writes may make it huge, which only costs CPU. */
const CAMERA = { width: 640, height: 480, fps: 15 };

let server: ThingServer;
let base: string;
let port: number;
let settingsDir: string;
let camera: SimulatedCamera;
let surface: HttpSurface;

beforeAll(async () => {
  settingsDir = await tempDir("labthings-fuzz-settings-");
  camera = new SimulatedCamera(CAMERA);
  // The Things of `labthings-ts serve` without --config (src/cli/default-config.ts).
  server = new ThingServer(
    [
      { name: "stage", thing: new SimulatedStage() },
      { name: "camera", thing: camera },
      { name: "autofocus", thing: new Autofocus() },
    ],
    { port: 0, settingsDir },
  );
  base = await within(server.start(), "the server to start");
  port = Number(new URL(base).port);
  surface = surfaceFromDescriptions(await getJson(`${base}/thing_descriptions/`), base);
  // One finished invocation with a blob, so real ids are among the paths tried.
  const created = await fetch(`${base}/camera/capture`, { method: "POST" });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  await within(server.invocations.get(id).settled, "the capture to finish");
  const status = await getJson<{ output?: { href: string } }>(`${base}/action_invocations/${id}`);
  surface.invocationIds.push(id);
  if (status.output) surface.blobIds.push(status.output.href.split("/").pop()!);
});

afterAll(async () => {
  if (server) await within(server.close(), "server.close()");
  await removeTempDirs();
});

// ─── state ───────────────────────────────────────────────────────────────────────────

/** Every property of every Thing, and every settings file, as text. */
async function snapshotState(): Promise<{ things: string; files: Record<string, string> }> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(settingsDir)).sort()) {
    files[name] = await readFile(join(settingsDir, name), "utf8").catch((e: Error) => e.message);
  }
  return { things: JSON.stringify(server.registry.readAllThings()), files };
}

type State = Awaited<ReturnType<typeof snapshotState>>;

function stateChanges(before: State, after: State): string[] {
  const changes: string[] = [];
  if (before.things !== after.things) {
    changes.push(`properties changed:\n  before ${before.things}\n  after  ${after.things}`);
  }
  const names = new Set([...Object.keys(before.files), ...Object.keys(after.files)]);
  for (const name of names) {
    if (before.files[name] !== after.files[name]) {
      changes.push(
        `settings file ${name} changed:\n  before ${before.files[name]}\n  after  ${after.files[name]}`,
      );
    }
  }
  return changes;
}

/**
 * After an accepted request: cancel (and await) the invocation it started, write
 * pending settings, and put the camera back to a small frame so later cases stay cheap.
 */
async function settleAccepted(response: WireResponse): Promise<string[]> {
  const problems: string[] = [];
  const location = headerOf(response, "location");
  if (response.status === 201) {
    const id = /^\/action_invocations\/([^/?]+)$/.exec(location ?? "")?.[1];
    if (!id) return [`201 without a Location naming the invocation (Location: ${location})`];
    const cancelled = await fetch(`${base}/action_invocations/${id}`, { method: "DELETE" });
    await cancelled.arrayBuffer();
    if (cancelled.status !== 204 && cancelled.status !== 409) {
      problems.push(`DELETE of invocation ${id} answered ${cancelled.status}`);
    }
    await within(server.invocations.get(id).settled, `invocation ${id} to settle`);
  }
  await within(server.settings.flush(), "settings to be written");
  const { width, height } = camera.resolution;
  if (width * height > CAMERA.width * CAMERA.height) {
    camera.resolution = { width: CAMERA.width, height: CAMERA.height };
  }
  if (camera.frameRate > CAMERA.fps) camera.frameRate = CAMERA.fps;
  return problems;
}

// ─── what a response must be ─────────────────────────────────────────────────────────

function headerValue(request: FuzzRequest, name: string): string | undefined {
  return request.headers.find(([key]) => key.toLowerCase() === name)?.[1];
}

/** A response Node writes itself (see the file comment): matched exactly, or undefined. */
function nodeWritten(request: FuzzRequest, result: ExchangeResult): string | undefined {
  const { response } = result;
  if (request.method === "CONNECT" && result.closedWithoutResponse) return "CONNECT";
  if (!response || response.body.length > 0) return undefined;
  if (response.status === 400 && request.host === "missing") return "no Host header";
  const expectation = headerValue(request, "expect");
  if (response.status === 417 && expectation !== undefined && expectation !== "100-continue") {
    return "Expect";
  }
  return undefined;
}

/**
 * A known gap, answered by a library rather than by the server's code, and tested on its
 * own (marked as failing) further down; undefined for everything else.
 */
function knownGap(request: FuzzRequest, result: ExchangeResult): string | undefined {
  const { response } = result;
  // `ws` (under @fastify/websocket) refuses a bad websocket handshake on any route in
  // text/html, with a body even for HEAD.
  if (
    headerValue(request, "upgrade") === "websocket" &&
    response &&
    (response.status === 400 || response.status === 405) &&
    headerOf(response, "content-type") === "text/html"
  ) {
    return "ws handshake refusal";
  }
  // Fastify's router refuses a path with broken percent-encoding (`/%`, `/%zz`) or an
  // asterisk-form target (`*`) in its own JSON before any hook runs: its
  // `frameworkErrors` option would make it Problem Details.
  if (
    response?.status === 400 &&
    headerOf(response, "content-type")?.startsWith("application/json") &&
    isBadUrlForRouter(request.target) &&
    (request.method === "HEAD" || response.body.includes("FST_ERR_BAD_URL"))
  ) {
    return "Fastify bad URL";
  }
  return undefined;
}

function isBadUrlForRouter(target: string): boolean {
  if (!target.startsWith("/")) return true;
  try {
    decodeURIComponent(target.split("?")[0]!);
    return false;
  } catch {
    return true;
  }
}

/**
 * The body of an error to a HEAD request that the server rejected before routing it
 * (431, 414-sized heads, malformed HTTP): its client-error handler cannot know the
 * method, so the Problem Details body comes anyway, framed by Content-Length and
 * followed by the close. Undefined for anything else.
 */
function bodyOfEarlyRejection(request: FuzzRequest, result: ExchangeResult): Buffer | undefined {
  const { response, trailing } = result;
  if (request.method !== "HEAD" || !response || trailing.length === 0) return undefined;
  if (![400, 408, 431].includes(response.status)) return undefined;
  if (Number(headerOf(response, "content-length")) !== trailing.length) return undefined;
  return trailing;
}

/** Everything wrong with the response to `request`; empty when all is well. */
function responseProblems(request: FuzzRequest, result: ExchangeResult): string[] {
  if (result.timedOut) return [`no whole response within ${EXCHANGE_MS} ms`];
  if (knownGap(request, result)) return [];
  const problems = [...result.violations];
  const earlyBody = bodyOfEarlyRejection(request, result);
  const trailing = trailingViolation(result);
  if (trailing && !earlyBody) problems.push(trailing);
  if (nodeWritten(request, result)) return problems;
  const { response } = result;
  if (!response) return [...problems, "the connection closed without a response"];
  const { status } = response;
  if (status >= 500 && !DECLARED_5XX.has(status)) problems.push(`undeclared ${status}`);
  if (status < 400) return problems;

  const type = headerOf(response, "content-type") ?? "";
  if (!/^application\/problem\+json\b/.test(type)) {
    problems.push(`a ${status} with Content-Type '${type}', not application/problem+json`);
    return problems;
  }
  const body = earlyBody ?? response.body;
  if (request.method === "HEAD" && !earlyBody) return problems; // no body to read
  let problem: { status?: unknown; title?: unknown; type?: unknown; detail?: unknown };
  try {
    problem = JSON.parse(body.toString("utf8"));
  } catch {
    return [...problems, `a ${status} whose body is not JSON`];
  }
  if (problem.status !== status) problems.push(`Problem Details status ${problem.status}`);
  if (typeof problem.title !== "string" || problem.title === "") problems.push("no title");
  if (typeof problem.type !== "string" || problem.type === "") problems.push("no type");
  if (problem.detail !== undefined && typeof problem.detail !== "string") {
    problems.push("a detail that is not a string");
  }
  const declaredType = DECLARED_5XX.get(status);
  if (declaredType && problem.type !== declaredType) {
    problems.push(`a ${status} of type ${problem.type}, not ${declaredType}`);
  }
  if (/\n\s+at |\\n\s+at |\.ts:\d+|\.js:\d+/.test(body.toString("utf8"))) {
    problems.push("a stack trace in the body");
  }
  return problems;
}

// ─── the fuzz run ────────────────────────────────────────────────────────────────────

describe("fuzzing the simulated microscope over raw HTTP", () => {
  it("answers every request well-formed, with Problem Details, no undeclared 5xx, and no change from a rejected one", {
    timeout: 90_000,
  }, async () => {
    const statuses = new Map<string, number>();
    let cases = 0;
    let lastKnown = await snapshotState();

    const property = fc.asyncProperty(fuzzRequest(surface), async (request) => {
      cases += 1;
      const failures: string[] = [];
      const before = await snapshotState();
      failures.push(...stateChanges(lastKnown, before).map((c) => `between cases: ${c}`));

      const bytes = serializeRequest(request, port);
      const result = await exchange(port, bytes, {
        method: request.method,
        timeoutMs: EXCHANGE_MS,
        checkTrailingBytes: isSingleRequest(request),
      });
      failures.push(...responseProblems(request, result));
      const status = result.response?.status;
      const exception =
        knownGap(request, result) ??
        nodeWritten(request, result) ??
        (bodyOfEarlyRejection(request, result) ? "HEAD rejected early" : undefined);
      const key = `${status ?? "no response"}${exception ? ` (${exception})` : ""}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);

      if (status !== undefined && status < 400) {
        failures.push(...(await settleAccepted(result.response!)));
      } else {
        failures.push(...stateChanges(before, await snapshotState()));
      }
      const td = await fetch(`${base}/stage/`).catch((error: Error) => error);
      if (td instanceof Error || td.status !== 200) {
        failures.push(
          `the server no longer answers GET /stage/ (${td instanceof Error ? td.message : td.status})`,
        );
      } else await td.arrayBuffer();
      lastKnown = await snapshotState();

      if (failures.length > 0) {
        throw new Error(
          `case ${cases}: ${failures.join("\n")}\n--- request ---\n${printable(bytes)}\n` +
            `--- received ---\n${printable(result.received)}`,
        );
      }
    });

    const started = performance.now();
    const details = await fc.check(property, {
      seed: SEED,
      numRuns: NUM_RUNS,
      // The server is stateful: shrinking would replay cases on a changed server.
      endOnFailure: true,
      interruptAfterTimeLimit: TIME_LIMIT_MS,
      markInterruptAsFailure: false,
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const tally = [...statuses]
      .sort()
      .map(([s, n]) => `${s}×${n}`)
      .join(", ");
    console.log(`fuzz: ${cases} cases in ${seconds} s (seed ${SEED}); statuses ${tally}`);
    if (details.failed) {
      // Not fast-check's report: it prints the whole request object, 1 MiB bodies included.
      const error = details.errorInstance;
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n\n` +
          `seed ${details.seed}, path ${details.counterexamplePath}: re-run with FUZZ_SEED=${SEED}`,
      );
    }
    expect(cases).toBeGreaterThanOrEqual(Math.min(MIN_CASES, NUM_RUNS));
  });
});

// ─── the known gaps, one request each ────────────────────────────────────────────────

describe("answers the fuzz run tolerates (knownGap), as they should be", () => {
  async function send(lines: string[]): Promise<ExchangeResult> {
    const text = `${[...lines, `Host: 127.0.0.1:${port}`, "Connection: close"].join("\r\n")}\r\n\r\n`;
    const method = lines[0]!.split(" ")[0]!;
    return exchange(port, Buffer.from(text, "latin1"), {
      method,
      timeoutMs: EXCHANGE_MS,
      checkTrailingBytes: true,
    });
  }

  function expectProblemResponse(result: ExchangeResult, status: number): void {
    expect(result.response?.status, result.received).toBe(status);
    expect(headerOf(result.response!, "content-type"), result.received).toMatch(
      /^application\/problem\+json\b/,
    );
    expect(JSON.parse(result.response!.body.toString("utf8"))).toMatchObject({ status });
  }

  // Fails today: `ws` (through @fastify/websocket, which hands every upgrade request to
  // `wss.handleUpgrade` on whatever route it reaches) writes its own text/html refusal.
  // Fix (src/http/thing-server.ts): listen for the WebSocketServer's `wsClientError`
  // event (ws then writes nothing itself) and answer Problem Details there.
  it.fails("a refused websocket handshake is Problem Details (not ws's text/html)", async () => {
    const missingKey = await send([
      "GET /stage/ws HTTP/1.1",
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Version: 13",
    ]);
    expectProblemResponse(missingKey, 400);
    const post = await send([
      "POST /stage/speed HTTP/1.1",
      "Upgrade: websocket",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
    ]);
    expectProblemResponse(post, 405);
  });

  // Fails today: Fastify's router answers FST_ERR_BAD_URL in its own JSON before any hook
  // or error handler runs. Fix: Fastify's `frameworkErrors` option (called for
  // FST_ERR_BAD_URL) answering through sendProblem.
  it.fails("a path with broken percent-encoding answers 400 Problem Details", async () => {
    expectProblemResponse(await send(["GET /stage/%zz HTTP/1.1"]), 400);
    expectProblemResponse(await send(["GET /% HTTP/1.1"]), 400);
  });
});
