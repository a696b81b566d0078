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
 * - a rejected request (≥ 400, or no response) changed no property of any Thing, started
 *   no invocation and changed no settings file; nothing changes between cases either.
 *   Accepted requests may change state: their invocations are cancelled and awaited, and
 *   settings flushed, before the next case.
 *
 * Responses written by Node itself, before any of the server's code runs, are the
 * exceptions, each matched exactly in `nodeWritten`:
 * - `CONNECT`: Node's HTTP server hands it to a `connect` listener; with none it closes
 *   the socket without a response;
 * - a request without `Host`: Node answers 400 with an empty body (`requireHostHeader`);
 * - `Expect:` other than `100-continue`: Node answers 417 with an empty body.
 * A HEAD request refused before routing (431, malformed HTTP) gets its Problem Details
 * body anyway (`bodyOfEarlyRejection`). Everything else, including what libraries
 * refuse (Fastify's router, `ws` handshakes), must be Problem Details; the tests at the
 * end pin the cases the fuzzing once found answered otherwise.
 *
 * A second, shorter run fuzzes a server with bearer-token authentication and never
 * sends the token: every answer but the public ones (TDs, docs, dashboard shell) is 401
 * Problem Details with `WWW-Authenticate`, and nothing changes at all. A third sends a
 * viewer's token with every request (as a header or `?access_token=`): nothing changes,
 * no unsafe method is ever accepted (403 naming the operator role), and the token never
 * comes back in a response.
 *
 * FUZZ_SEED and FUZZ_RUNS in the environment change the seed and the number of cases
 * (the authenticated run does a quarter of them); a failure prints the seed and the
 * request. The console line `fuzz: N cases …` is the figure for the README.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedCamera } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import {
  type FuzzRequest,
  fuzzRequest,
  type HttpSurface,
  isSingleRequest,
  serializeRequest,
  surfaceFromDescriptions,
} from "./support/fuzz-requests.js";
import { microscopeEntries } from "./support/microscope.js";
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
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
/** Wall-clock bound on the cases, so a loaded machine runs fewer rather than timing out. */
const TIME_LIMIT_MS = 20_000;
/** Fewer cases than this within the time limit would not be a fuzz run worth the name. */
const MIN_CASES = 50;
/** Bound on one request/response exchange. */
const EXCHANGE_MS = 5_000;

/** The only 5xx the server may answer (README "HTTP API"). */
const DECLARED_5XX = new Map([[503, "tag:labthings-ts,2026:unavailable"]]);

/** The camera's frame size: fuzzed writes may make it huge, which only costs CPU. */
const CAMERA = { width: 640, height: 480, fps: 15 };

/** A token the authenticated server wants, and the fuzzer never sends. */
const TOKEN = "fuzz-token-0123456789abcdef0123456789abcdef";
/** A viewer's token the third run sends with every request. */
const VIEWER_TOKEN = "fuzz-viewer-0123456789abcdef0123456789abcd";

/**
 * The simulated microscope on its own server: the Things of `labthings-ts serve` without
 * --config (src/cli/default-config.ts), settings in a temporary folder.
 */
class ServedMicroscope {
  readonly camera = new SimulatedCamera(CAMERA);
  readonly server: ThingServer;
  base = "";
  port = 0;
  surface!: HttpSurface;

  private constructor(
    readonly settingsDir: string,
    readonly authToken: string | undefined,
    viewerToken: string | undefined,
  ) {
    this.server = new ThingServer(microscopeEntries({ camera: this.camera, autofocus: true }), {
      port: 0,
      settingsDir,
      authToken,
      authTokens: viewerToken ? [{ token: viewerToken, role: "viewer" }] : undefined,
    });
  }

  static async start(authToken?: string, viewerToken?: string): Promise<ServedMicroscope> {
    const microscope = new ServedMicroscope(
      await tempDir("labthings-fuzz-settings-"),
      authToken,
      viewerToken,
    );
    await microscope.#start();
    return microscope;
  }

  /** Headers for the test's own requests (never the fuzzed ones). */
  get auth(): Record<string, string> {
    return this.authToken ? { authorization: `Bearer ${this.authToken}` } : {};
  }

  async #start(): Promise<void> {
    this.base = await within(this.server.start(), "the server to start");
    this.port = Number(new URL(this.base).port);
    const descriptions = await fetch(`${this.base}/thing_descriptions/`);
    this.surface = surfaceFromDescriptions(await descriptions.json(), this.base);
    // One finished invocation with a blob, so real ids are among the paths tried.
    const created = await fetch(`${this.base}/camera/capture`, {
      method: "POST",
      headers: this.auth,
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await within(this.server.invocations.get(id).settled, "the capture to finish");
    const status = (await (
      await fetch(`${this.base}/action_invocations/${id}`, { headers: this.auth })
    ).json()) as { output?: { href: string } };
    this.surface.invocationIds.push(id);
    if (status.output) this.surface.blobIds.push(status.output.href.split("/").pop()!);
  }

  /** Every property of every Thing, the invocations, and every settings file, as text. */
  async snapshot(): Promise<State> {
    const files: Record<string, string> = {};
    for (const name of (await readdir(this.settingsDir)).sort()) {
      const path = join(this.settingsDir, name);
      files[name] = await readFile(path, "utf8").catch((e: Error) => e.message);
    }
    return {
      things: JSON.stringify(this.server.registry.readAllThings()),
      invocations: this.server.invocations.list().length,
      files,
    };
  }

  /**
   * After an accepted request: cancel (and await) the invocation it started, write
   * pending settings, and put the camera back to a small frame so later cases stay cheap.
   */
  async settleAccepted(response: WireResponse): Promise<string[]> {
    const problems: string[] = [];
    const location = headerOf(response, "location");
    if (response.status === 201) {
      const id = /^\/action_invocations\/([^/?]+)$/.exec(location ?? "")?.[1];
      if (!id) return [`201 without a Location naming the invocation (Location: ${location})`];
      const cancelled = await fetch(`${this.base}/action_invocations/${id}`, {
        method: "DELETE",
        headers: this.auth,
      });
      await cancelled.arrayBuffer();
      if (cancelled.status !== 204 && cancelled.status !== 409) {
        problems.push(`DELETE of invocation ${id} answered ${cancelled.status}`);
      }
      await within(this.server.invocations.get(id).settled, `invocation ${id} to settle`);
    }
    await within(this.server.settings.flush(), "settings to be written");
    const { width, height } = this.camera.resolution;
    if (width * height > CAMERA.width * CAMERA.height) {
      this.camera.resolution = { width: CAMERA.width, height: CAMERA.height };
    }
    if (this.camera.frameRate > CAMERA.fps) this.camera.frameRate = CAMERA.fps;
    return problems;
  }

  /** The server still answers: the stage's TD (public, so no token needed). */
  async stillAnswers(): Promise<string | undefined> {
    const td = await fetch(`${this.base}/stage/`).catch((error: Error) => error);
    if (td instanceof Error) return `the server no longer answers GET /stage/ (${td.message})`;
    await td.arrayBuffer();
    return td.status === 200 ? undefined : `GET /stage/ answered ${td.status}`;
  }

  async close(): Promise<void> {
    await within(this.server.close(), "server.close()");
  }
}

interface State {
  things: string;
  invocations: number;
  files: Record<string, string>;
}

function stateChanges(before: State, after: State): string[] {
  const changes: string[] = [];
  if (before.things !== after.things) {
    changes.push(`properties changed:\n  before ${before.things}\n  after  ${after.things}`);
  }
  if (before.invocations !== after.invocations) {
    changes.push(`invocations: ${before.invocations} before, ${after.invocations} after`);
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

/** A JSON answer parses; a 201 is the status of the invocation its Location names. */
function successProblems(request: FuzzRequest, response: WireResponse): string[] {
  const type = headerOf(response, "content-type") ?? "";
  if (request.method === "HEAD" || response.longLived || !/\bjson\b/.test(type)) return [];
  let body: unknown;
  try {
    body = JSON.parse(response.body.toString("utf8"));
  } catch {
    return [`a ${response.status} ${type} whose body is not JSON`];
  }
  const location = headerOf(response, "location");
  if (response.status === 201 && (body as { href?: unknown }).href !== location) {
    return [`a 201 whose status href is not its Location (${location})`];
  }
  return [];
}

/** Everything wrong with the response to `request`; empty when all is well. */
function responseProblems(request: FuzzRequest, result: ExchangeResult): string[] {
  if (result.timedOut) return [`no whole response within ${EXCHANGE_MS} ms`];
  const problems = [...result.violations];
  const earlyBody = bodyOfEarlyRejection(request, result);
  const trailing = trailingViolation(result);
  if (trailing && !earlyBody) problems.push(trailing);
  if (nodeWritten(request, result)) return problems;
  const { response } = result;
  if (!response) return [...problems, "the connection closed without a response"];
  const { status } = response;
  if (status >= 500 && !DECLARED_5XX.has(status)) problems.push(`undeclared ${status}`);
  if (status < 400) return [...problems, ...successProblems(request, response)];

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

// ─── the fuzz runs ───────────────────────────────────────────────────────────────────

/**
 * Paths readable without a token (TDs, the dashboard shell and files, the API docs, the
 * server's own TD at /.well-known/wot; the fleet page, but not its listing).
 */
const PUBLIC_PATH =
  /^\/(|things\/?|thing_descriptions\/?|[A-Za-z0-9_-]+\/?|openapi\.json|docs(\/.*)?|_dashboard\/.*|\.well-known\/wot)$/;

interface FuzzRun {
  numRuns: number;
  timeLimitMs: number;
  /**
   * Checks of its own for one case, after the common ones; `changed`: the state
   * differs from before the request (only seen by runs where nothing may change).
   */
  check?: (request: FuzzRequest, result: ExchangeResult) => string[];
  /** No request may change anything, accepted or not (no token ever sent). */
  nothingChanges: boolean;
  /** What is sent: by default the fuzzed requests as drawn. */
  requests?: (surface: HttpSurface) => fc.Arbitrary<FuzzRequest>;
  /** Names the run in the console line. */
  label?: string;
}

/** Run the fuzz cases against `microscope`; returns how many ran and the status tally. */
async function fuzz(microscope: ServedMicroscope, run: FuzzRun): Promise<number> {
  const statuses = new Map<string, number>();
  let cases = 0;
  let lastKnown = await microscope.snapshot();

  const requests = run.requests?.(microscope.surface) ?? fuzzRequest(microscope.surface);
  const property = fc.asyncProperty(requests, async (request) => {
    cases += 1;
    const failures: string[] = [];
    const before = await microscope.snapshot();
    failures.push(...stateChanges(lastKnown, before).map((c) => `between cases: ${c}`));

    const bytes = serializeRequest(request, microscope.port);
    const result = await exchange(microscope.port, bytes, {
      method: request.method,
      timeoutMs: EXCHANGE_MS,
      checkTrailingBytes: isSingleRequest(request),
    });
    failures.push(...responseProblems(request, result), ...(run.check?.(request, result) ?? []));
    const status = result.response?.status;
    const exception =
      nodeWritten(request, result) ??
      (bodyOfEarlyRejection(request, result) ? "HEAD rejected early" : undefined);
    const key = `${status ?? "no response"}${exception ? ` (${exception})` : ""}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);

    if (status !== undefined && status < 400 && !run.nothingChanges) {
      failures.push(...(await microscope.settleAccepted(result.response!)));
    } else {
      failures.push(...stateChanges(before, await microscope.snapshot()));
    }
    const down = await microscope.stillAnswers();
    if (down) failures.push(down);
    lastKnown = await microscope.snapshot();

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
    numRuns: run.numRuns,
    // The server is stateful: shrinking would replay cases on a changed server.
    endOnFailure: true,
    interruptAfterTimeLimit: run.timeLimitMs,
    markInterruptAsFailure: false,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const tally = [...statuses]
    .sort()
    .map(([s, n]) => `${s}×${n}`)
    .join(", ");
  const label = run.label ?? (microscope.authToken ? "with authentication" : "open");
  console.log(`fuzz (${label}): ${cases} cases in ${seconds} s (seed ${SEED}); statuses ${tally}`);
  if (details.failed) {
    // Not fast-check's report: it prints the whole request object, 1 MiB bodies included.
    const error = details.errorInstance;
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n\n` +
        `seed ${details.seed}, path ${details.counterexamplePath}: re-run with FUZZ_SEED=${SEED}`,
    );
  }
  return cases;
}

describe("fuzzing the simulated microscope over raw HTTP", () => {
  let microscope: ServedMicroscope;
  let port: number;

  beforeAll(async () => {
    microscope = await ServedMicroscope.start();
    port = microscope.port;
  });

  afterAll(async () => {
    await microscope?.close();
    await removeTempDirs();
  });

  it("answers every request well-formed, with Problem Details, no undeclared 5xx, and no change from a rejected one", {
    timeout: 90_000,
  }, async () => {
    const cases = await fuzz(microscope, {
      numRuns: NUM_RUNS,
      timeLimitMs: TIME_LIMIT_MS,
      nothingChanges: false,
    });
    expect(cases).toBeGreaterThanOrEqual(Math.min(MIN_CASES, NUM_RUNS));
  });

  // The known gaps, one request each.
  /** One request: its request line and headers, plus Host (and Connection: close). */
  async function send(lines: string[], connection = "close"): Promise<ExchangeResult> {
    const head = [...lines, `Host: 127.0.0.1:${port}`, `Connection: ${connection}`];
    const text = `${head.join("\r\n")}\r\n\r\n`;
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

  describe("refusals libraries write are Problem Details too (found by fuzzing)", () => {
    // `ws` used to write its own text/html refusal; the server answers `wsClientError`.
    it("a refused websocket handshake is Problem Details (not ws's text/html)", async () => {
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

    // Fastify's router answered FST_ERR_BAD_URL in its own JSON; `frameworkErrors` now.
    it("a path with broken percent-encoding answers 400 Problem Details", async () => {
      expectProblemResponse(await send(["GET /stage/%zz HTTP/1.1"]), 400);
      expectProblemResponse(await send(["GET /% HTTP/1.1"]), 400);
    });

    // A path parameter over Fastify's maxParamLength (100) was a 414 in Fastify's JSON;
    // a long id is just an unknown one (the URL as a whole is limited by limits.urlBytes).
    it("an over-long path parameter (a 101-character invocation id) is an unknown invocation", async () => {
      const id = "a".repeat(101);
      expectProblemResponse(await send([`GET /action_invocations/${id} HTTP/1.1`]), 404);
    });
  });

  // Answers that were Problem Details but misled a client (found by fuzzing).
  describe("misleading answers the fuzz run found", () => {
    // Methods other than GET/PUT/POST/DELETE/PATCH fell to the not-found handler, which
    // said "Thing 'stage' has no affordance 'speed'" about a resource that exists.
    it("a method not served on an existing affordance is 405 with Allow, never a 404 denying it exists", async () => {
      const options = await send(["OPTIONS /stage/speed HTTP/1.1"]);
      expect(options.response?.status, options.received).toBe(204);
      expect(headerOf(options.response!, "allow")).toBe("GET, PUT");
      for (const line of [
        "PROPFIND /stage/speed HTTP/1.1",
        "TRACE /stage/ HTTP/1.1",
        "HEAD /camera/stream HTTP/1.1",
      ]) {
        const result = await send([line]);
        expect(result.response?.status, `${line}: ${result.received}`).toBe(405);
        expect(headerOf(result.response!, "allow"), line).toMatch(/\bGET\b/);
      }
    });

    // @fastify/websocket completed the handshake on any GET route, then closed the socket
    // with no close code: a client that got the URL wrong saw "connected", then silence.
    it("a websocket upgrade to a path that is no websocket endpoint is refused", async () => {
      const result = await send(
        [
          "GET /stage/speed HTTP/1.1",
          "Upgrade: websocket",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
          "Sec-WebSocket-Version: 13",
        ],
        "Upgrade",
      );
      expect(result.response?.status, result.received).toBeGreaterThanOrEqual(400);
      expect(headerOf(result.response!, "content-type")).toMatch(/^application\/problem\+json/);
    });
  });
});

describe("fuzzing the microscope with authentication on, never sending the token", () => {
  let microscope: ServedMicroscope;

  beforeAll(async () => {
    microscope = await ServedMicroscope.start(TOKEN);
  });

  afterAll(async () => {
    await microscope?.close();
  });

  it("changes nothing; everything but the public descriptions is 401 Problem Details with WWW-Authenticate", {
    timeout: 60_000,
  }, async () => {
    const runs = Math.max(1, Math.floor(NUM_RUNS / 4));
    const cases = await fuzz(microscope, {
      numRuns: runs,
      timeLimitMs: TIME_LIMIT_MS / 2,
      nothingChanges: true,
      check: (request, result) => {
        const response = result.response;
        if (!response) return [];
        const path = request.target.split("?")[0]!;
        let decoded = path;
        try {
          decoded = decodeURIComponent(path);
        } catch {}
        // The router reads `//` as `/` and `*` as the root: the dashboard shell.
        decoded = decoded.replace(/\/{2,}/g, "/").replace(/^\*$/, "/");
        const problems: string[] = [];
        if (response.status < 400 && !PUBLIC_PATH.test(decoded)) {
          problems.push(`${response.status} for ${request.method} ${path} without the token`);
        }
        if (
          response.status === 401 &&
          !headerOf(response, "www-authenticate")?.startsWith("Bearer")
        ) {
          problems.push("a 401 without WWW-Authenticate: Bearer");
        }
        return problems;
      },
    });
    expect(cases).toBeGreaterThanOrEqual(Math.min(MIN_CASES, runs));
  });
});

/** `request` with the viewer's token: as `Authorization` (unless it has one), or in the query. */
function withViewerToken(request: FuzzRequest, inHeader: boolean): FuzzRequest {
  const hasAuthorization = request.headers.some(([name]) => name.toLowerCase() === "authorization");
  if (inHeader && !hasAuthorization) {
    return {
      ...request,
      headers: [...request.headers, ["Authorization", `Bearer ${VIEWER_TOKEN}`]],
    };
  }
  const separator = request.target.includes("?") ? "&" : "?";
  return { ...request, target: `${request.target}${separator}access_token=${VIEWER_TOKEN}` };
}

describe("fuzzing the microscope with a viewer's token on every request", () => {
  let microscope: ServedMicroscope;

  beforeAll(async () => {
    microscope = await ServedMicroscope.start(TOKEN, VIEWER_TOKEN);
  });

  afterAll(async () => {
    await microscope?.close();
  });

  it("changes nothing, accepts no unsafe method (403 naming the operator role), never echoes the token", {
    timeout: 60_000,
  }, async () => {
    const runs = Math.max(1, Math.floor(NUM_RUNS / 4));
    const cases = await fuzz(microscope, {
      numRuns: runs,
      timeLimitMs: TIME_LIMIT_MS / 2,
      nothingChanges: true,
      label: "with a viewer's token",
      requests: (surface) =>
        fc
          .tuple(fuzzRequest(surface), fc.boolean())
          .map(([request, inHeader]) => withViewerToken(request, inHeader)),
      check: (request, result) => {
        const response = result.response;
        if (!response) return [];
        const problems: string[] = [];
        const safe = ["GET", "HEAD", "OPTIONS"].includes(request.method);
        if (!safe && response.status < 400) {
          problems.push(`${response.status} for a viewer's ${request.method} ${request.target}`);
        }
        if (response.status === 403) {
          const body = response.body.toString("utf8");
          if (request.method !== "HEAD" && !body.includes("'operator' role")) {
            problems.push(`a 403 that does not name the operator role: ${body.slice(0, 200)}`);
          }
        }
        if (result.received.includes(VIEWER_TOKEN))
          problems.push("the viewer's token in the response");
        return problems;
      },
    });
    expect(cases).toBeGreaterThanOrEqual(Math.min(MIN_CASES, runs));
  });
});
