/**
 * Shutdown of the real command line (`dist/src/cli/main.js serve`) with real clients:
 * SIGTERM/SIGINT with open MJPEG streams (every client sees the closing delimiter and a
 * clean end, the process exits 0 fast), a Thing whose stop() never returns (the deadline
 * ends the process, non-zero, naming the Thing), a second signal (exits at once), and
 * what a client sees while the server is shutting down (503 Problem Details on an open
 * connection, refused new connections).
 *
 * `npm test` builds first (the `pretest` script); run `npm run build` before running this
 * file on its own. Needs Debian's `curl`.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { get, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  assertBuilt,
  FRAMEWORK,
  killAll,
  type LogLine,
  listeningUrl,
  STAGE,
  startCli,
  trackChild,
} from "./support/cli-process.js";
import { expectRawProblem } from "./support/problem.js";
import { parseResponses, RawConnection } from "./support/raw-http.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { deferred, within } from "./support/within.js";

const BOUNDARY = "frame";
const CLOSING_DELIMITER = `--${BOUNDARY}--\r\n`;
/** What the tests assert on SIGTERM → exit with open streams; the design target is 250 ms. */
const CLEAN_EXIT_LIMIT_MS = 1000;

afterEach(async () => {
  await killAll();
  for (const client of openClients) client.destroy();
  openClients.clear();
});

// ─── MJPEG clients ────────────────────────────────────────────────────────────────────

/**
 * Parses `multipart/x-mixed-replace` as ffmpeg's mpjpeg demuxer does, by Content-Length:
 * `--frame` CRLF, headers, CRLF, the JPEG, CRLF; and at the end `--frame--` CRLF.
 */
class MjpegParser {
  frames = 0;
  /** The closing delimiter has arrived. */
  closed = false;
  /** The first violation of the wire format, if any. */
  error: string | undefined;
  /** The last bytes received, to check how the body ends. */
  tail: Buffer = Buffer.alloc(0);
  #buffer: Buffer = Buffer.alloc(0);
  #state: "boundary" | "headers" | "body" = "boundary";
  #length = 0;
  readonly #onFrame: () => void;

  constructor(onFrame: () => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.tail = Buffer.concat([this.tail, chunk]).subarray(-64);
    if (this.error) return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (!this.error && this.#step()) {}
  }

  /** Consume one element; false when more bytes are needed. */
  #step(): boolean {
    const buffer = this.#buffer;
    if (this.closed) {
      if (buffer.length > 0) this.error = `bytes after the closing delimiter: ${buffer.length}`;
      return false;
    }
    if (this.#state === "boundary") {
      const dashes = `--${BOUNDARY}`;
      if (buffer.length < dashes.length + 2) return false;
      if (buffer.toString("latin1", 0, dashes.length) !== dashes) {
        this.error = `expected '--${BOUNDARY}', got ${JSON.stringify(buffer.toString("latin1", 0, 20))}`;
        return false;
      }
      const after = buffer.toString("latin1", dashes.length, dashes.length + 2);
      if (after === "\r\n") {
        this.#state = "headers";
        this.#buffer = buffer.subarray(dashes.length + 2);
        return true;
      }
      if (after === "--") {
        if (buffer.length < dashes.length + 4) return false;
        if (buffer.toString("latin1", dashes.length + 2, dashes.length + 4) !== "\r\n") {
          this.error = "closing delimiter without CRLF";
          return false;
        }
        this.closed = true;
        this.#buffer = buffer.subarray(dashes.length + 4);
        return true;
      }
      this.error = `unexpected bytes after the boundary: ${JSON.stringify(after)}`;
      return false;
    }
    if (this.#state === "headers") {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buffer.length > 1024) this.error = "part headers longer than 1 KiB";
        return false;
      }
      const headers = new Map<string, string>();
      for (const line of buffer.toString("latin1", 0, end).split("\r\n")) {
        const colon = line.indexOf(":");
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      if (headers.get("content-type") !== "image/jpeg") {
        this.error = `part Content-Type ${headers.get("content-type")}`;
        return false;
      }
      this.#length = Number(headers.get("content-length"));
      if (!Number.isInteger(this.#length) || this.#length <= 0) {
        this.error = `part Content-Length ${headers.get("content-length")}`;
        return false;
      }
      this.#state = "body";
      this.#buffer = buffer.subarray(end + 4);
      return true;
    }
    if (buffer.length < this.#length + 2) return false;
    const jpeg = buffer.subarray(0, this.#length);
    if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8 || jpeg.at(-2) !== 0xff || jpeg.at(-1) !== 0xd9) {
      this.error = "a part is not a whole JPEG (SOI … EOI)";
      return false;
    }
    if (buffer.toString("latin1", this.#length, this.#length + 2) !== "\r\n") {
      this.error = "no CRLF after a part's body";
      return false;
    }
    this.frames += 1;
    this.#state = "boundary";
    this.#buffer = buffer.subarray(this.#length + 2);
    this.#onFrame();
    return true;
  }
}

interface StreamEnd {
  status: number | undefined;
  contentType: string | undefined;
  frames: number;
  /** The response was read to its end ('end' event, `complete`). */
  complete: boolean;
  /** Socket or response errors (ECONNRESET, aborted, …). */
  errors: string[];
  parseError: string | undefined;
  closedByDelimiter: boolean;
  /** The body's last bytes, latin1. */
  tail: string;
}

interface StreamClient {
  firstFrame: Promise<void>;
  ended: Promise<StreamEnd>;
  destroy(): void;
}

const openClients = new Set<{ destroy(): void }>();

/** GET an MJPEG stream with node:http on its own connection and parse every part. */
function openStream(url: string): StreamClient {
  const first = deferred();
  const done = deferred<StreamEnd>();
  const errors: string[] = [];
  const parser = new MjpegParser(() => first.resolve());
  let response: IncomingMessage | undefined;
  const request = get(url, { agent: false });
  const finish = () =>
    done.resolve({
      status: response?.statusCode,
      contentType: response?.headers["content-type"],
      frames: parser.frames,
      complete: response?.complete ?? false,
      errors,
      parseError: parser.error,
      closedByDelimiter: parser.closed,
      tail: parser.tail.toString("latin1"),
    });
  request.on("error", (error) => {
    errors.push(`request: ${error.message}`);
    finish();
  });
  request.on("response", (res) => {
    response = res;
    res.on("data", (chunk: Buffer) => parser.push(chunk));
    res.on("aborted", () => errors.push("response aborted"));
    res.on("error", (error) => errors.push(`response: ${error.message}`));
    res.on("end", finish);
    res.on("close", finish);
  });
  const client = { destroy: () => request.destroy() };
  openClients.add(client);
  return {
    firstFrame: first.promise,
    ended: done.promise.finally(() => openClients.delete(client)),
    destroy: client.destroy,
  };
}

interface CurlExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last bytes curl wrote, latin1. */
  tail: string;
  /** The closing delimiter arrived. */
  closed: boolean;
}

/** `curl -sN URL`, its output parsed as it arrives. */
function openCurl(url: string): { firstFrame: Promise<void>; finished: Promise<CurlExit> } {
  const child = spawn("curl", ["-sN", url], { stdio: ["ignore", "pipe", "pipe"] });
  trackChild(child);
  const first = deferred();
  const parser = new MjpegParser(() => first.resolve());
  child.stdout!.on("data", (chunk: Buffer) => parser.push(chunk));
  child.stderr!.resume();
  const finished = new Promise<CurlExit>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (parser.error) reject(new Error(`curl received a malformed stream: ${parser.error}`));
      else resolve({ code, signal, tail: parser.tail.toString("latin1"), closed: parser.closed });
    });
  });
  return { firstFrame: first.promise, finished };
}

// ─── raw HTTP/1.1 on one connection ──────────────────────────────────────────────────

/** A raw connection that afterEach destroys. */
async function openRaw(port: number): Promise<RawConnection> {
  const connection = await RawConnection.open(port);
  openClients.add(connection.socket);
  return connection;
}

/** Try a new TCP connection: "refused" (ECONNREFUSED) or "connected". */
function tryConnect(port: number): Promise<"refused" | "connected" | string> {
  return within(
    new Promise((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve("connected");
      });
      socket.once("error", (error: NodeJS.ErrnoException) =>
        resolve(error.code === "ECONNREFUSED" ? "refused" : (error.code ?? error.message)),
      );
    }),
    "a new TCP connection to be accepted or refused",
  );
}

// ─── fixtures: a Thing whose stop() never returns ─────────────────────────────────────

/** Logs when stop() is entered (an event for the tests), then never settles. */
const stuckSource = `import { Thing } from ${JSON.stringify(FRAMEWORK)};

export class StuckThing extends Thing {
  static override title = "Stuck";

  override stop(): Promise<void> {
    this.logger.info({ fixture: "stuck" }, "stuck: stop() entered, never returning");
    return new Promise<void>(() => {});
  }
}
`;

let fixtures: string;
let stuckConfig: string;

beforeAll(async () => {
  assertBuilt();
  fixtures = await tempDir("labthings-shutdown-");
  await writeFile(join(fixtures, "stuck.ts"), stuckSource);
  stuckConfig = join(fixtures, "stuck.json");
  await writeFile(
    stuckConfig,
    JSON.stringify({ things: { stage: STAGE, stuck: "./stuck.ts#StuckThing" } }, null, 2),
  );
});

afterAll(removeTempDirs);

const stopEntered = (line: LogLine) => line.fixture === "stuck";

// ─── the tests ────────────────────────────────────────────────────────────────────────

describe("SIGTERM / SIGINT with open MJPEG streams", () => {
  it("SIGTERM with 50 node:http streams and curl: every stream ends cleanly, exit 0, fast", async () => {
    const cli = startCli(["--port", "0"]);
    const url = await listeningUrl(cli);
    const streamUrl = `${url}/camera/stream`;
    const clients = Array.from({ length: 50 }, () => openStream(streamUrl));
    const curl = openCurl(streamUrl);
    await within(
      Promise.all([...clients.map((c) => c.firstFrame), curl.firstFrame]),
      "every client to receive a first frame",
    );

    const sentAt = cli.signal("SIGTERM");
    const exit = await within(cli.exited, "the CLI to exit after SIGTERM");
    const elapsed = exit.at - sentAt;
    await within(cli.closed, "the CLI's output to close");
    const clean = cli.lines.find((line) => line.msg === "shut down cleanly");
    console.log(
      `SIGTERM → exit with 50 MJPEG clients + curl: ${elapsed.toFixed(0)} ms ` +
        `(server's own shutdown sequence: ${Number(clean?.durationMs).toFixed(1)} ms)`,
    );
    expect(exit, cli.stderr()).toMatchObject({ code: 0, signal: null });
    expect(clean, JSON.stringify(cli.lines)).toMatchObject({
      hungThings: [],
      failedThings: [],
      forced: false,
      responsesDestroyed: [],
    });
    expect(clean?.responsesEnded).toBe(51); // 50 node:http clients and curl

    const ends = await within(
      Promise.all(clients.map((c) => c.ended)),
      "every node:http stream to end",
    );
    for (const [i, end] of ends.entries()) {
      const label = `client ${i}: ${JSON.stringify({ ...end, tail: undefined })}`;
      expect(end.status, label).toBe(200);
      expect(end.contentType, label).toBe("multipart/x-mixed-replace;boundary=frame");
      expect(end.errors, label).toEqual([]);
      expect(end.parseError, label).toBeUndefined();
      expect(end.complete, label).toBe(true);
      expect(end.frames, label).toBeGreaterThanOrEqual(1);
      expect(end.closedByDelimiter, label).toBe(true);
      expect(end.tail.endsWith(`\r\n${CLOSING_DELIMITER}`), label).toBe(true);
    }
    const curlExit = await within(curl.finished, "curl to exit");
    expect(curlExit).toMatchObject({ code: 0, signal: null, closed: true });
    expect(curlExit.tail.endsWith(`\r\n${CLOSING_DELIMITER}`)).toBe(true);

    expect(elapsed).toBeLessThan(CLEAN_EXIT_LIMIT_MS);
  });

  it("SIGINT behaves like SIGTERM: open stream ended cleanly, exit 0", async () => {
    const cli = startCli(["--port", "0"]);
    const url = await listeningUrl(cli);
    const client = openStream(`${url}/camera/stream`);
    const preview = openStream(`${url}/camera/preview`);
    await within(Promise.all([client.firstFrame, preview.firstFrame]), "a first frame");

    const sentAt = cli.signal("SIGINT");
    const exit = await within(cli.exited, "the CLI to exit after SIGINT");
    await within(cli.closed, "the CLI's output to close");
    console.log(`SIGINT → exit with 2 MJPEG clients: ${(exit.at - sentAt).toFixed(0)} ms`);
    expect(exit, cli.stderr()).toMatchObject({ code: 0, signal: null });
    expect(cli.lines.find((line) => line.msg === "shutting down")).toMatchObject({
      signal: "SIGINT",
    });
    expect(cli.lines.find((line) => line.msg === "shut down cleanly")).toMatchObject({
      responsesEnded: 2,
      responsesDestroyed: [],
      forced: false,
    });
    for (const end of await within(Promise.all([client.ended, preview.ended]), "streams to end")) {
      expect(end.errors).toEqual([]);
      expect(end.parseError).toBeUndefined();
      expect(end.complete).toBe(true);
      expect(end.closedByDelimiter).toBe(true);
      expect(end.tail.endsWith(`\r\n${CLOSING_DELIMITER}`)).toBe(true);
    }
    expect(exit.at - sentAt).toBeLessThan(CLEAN_EXIT_LIMIT_MS);
  });
});

describe("a Thing whose stop() never returns", () => {
  it("the deadline (--shutdown-timeout 800) ends the process: non-zero, on time, naming the Thing", async () => {
    const cli = startCli(["--port", "0", "--config", stuckConfig, "--shutdown-timeout", "800"]);
    await listeningUrl(cli);

    const sentAt = cli.signal("SIGTERM");
    const exit = await within(cli.exited, "the CLI to exit after SIGTERM");
    await within(cli.closed, "the CLI's output to close");
    const elapsed = exit.at - sentAt;
    console.log(`SIGTERM → exit with a hung Thing, deadline 800 ms: ${elapsed.toFixed(0)} ms`);
    expect(exit.signal).toBeNull();
    expect(exit.code, cli.stderr()).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(3000);

    expect(cli.lines.some(stopEntered)).toBe(true);
    // The error line names the Thing that hung…
    const named = cli.lines.filter(
      (line) =>
        (line.level ?? 0) >= 50 && (line.thing === "stuck" || /'stuck'/.test(String(line.msg))),
    );
    expect(named, JSON.stringify(cli.lines)).not.toEqual([]);
    // …and so does the summary.
    const summary = cli.lines.find((line) => line.msg === "shut down with problems");
    expect(summary, JSON.stringify(cli.lines)).toMatchObject({ hungThings: ["stuck"] });
    expect(cli.lines.some((line) => line.msg === "shut down cleanly")).toBe(false);
  });

  it.each(["SIGTERM", "SIGINT"] as const)(
    "a second signal (%s) during a slow shutdown exits at once, non-zero",
    async (second) => {
      const cli = startCli(["--port", "0", "--config", stuckConfig, "--shutdown-timeout", "20000"]);
      await listeningUrl(cli);

      cli.signal("SIGTERM");
      await cli.waitForLog(stopEntered, "the shutdown to reach the stuck Thing's stop()");
      const sentAt = cli.signal(second);
      const exit = await within(cli.exited, `the CLI to exit after a second signal (${second})`);
      await within(cli.closed, "the CLI's output to close");
      const elapsed = exit.at - sentAt;
      console.log(`second signal (${second}) → exit: ${elapsed.toFixed(0)} ms`);
      expect(exit.signal).toBeNull();
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(elapsed).toBeLessThan(2000);
      expect(cli.lines.some((line) => line.msg === "shut down cleanly")).toBe(false);
    },
  );

  it("while shutting down: 503 Problem Details on an open keep-alive connection, new connections refused", async () => {
    const cli = startCli(["--port", "0", "--config", stuckConfig, "--shutdown-timeout", "20000"]);
    const url = await listeningUrl(cli);
    const port = Number(new URL(url).port);
    const active = await openRaw(port);
    const idle = await openRaw(port);

    // A keep-alive connection: one request answered, the connection stays open.
    active.socket.write("GET /stage/speed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await active.responses(1, "the first response");
    const [first] = parseResponses(active.text);
    expect(first?.status).toBe(200);
    expect(first?.headers.connection ?? "keep-alive").toBe("keep-alive");
    // Then a request in flight across the signal: a PUT's head, acknowledged with
    // "100 Continue". (An idle keep-alive connection is closed at once by close(): a
    // request sent on it races the server's FIN. A busy one survives close().)
    active.socket.write(
      "PUT /stage/speed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    );
    await active.responses(2, "100 Continue");
    expect(parseResponses(active.text)[1]?.status).toBe(100);
    // The idle connection has answered one request too: its closing tells close() began.
    idle.socket.write("GET /stage/speed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await idle.responses(1, "the response on the idle connection");
    expect(parseResponses(idle.text)[0]?.status).toBe(200);

    cli.signal("SIGTERM");
    await cli.waitForLog((line) => line.msg === "shutting down", "'shutting down'");
    await within(idle.closed, "the server to close the idle keep-alive connection");
    // Finish the PUT within the grace a request still receiving its body gets (1 s).
    active.socket.write("500");
    await active.responses(3, "the PUT's answer");
    await cli.waitForLog(stopEntered, "the shutdown to reach the stuck Thing's stop()");

    // A new request behind it on the same connection.
    active.socket.write("GET /stage/speed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await within(active.closed, "the server to close the connection after its 503");
    const [, continued, written, refused, ...more] = parseResponses(active.text);
    expect(
      parseResponses(active.text)
        .map((r) => r.status)
        .join(" "),
    ).toBe("200 100 204 503");
    expect(continued?.status).toBe(100);
    expect(written?.status).toBe(204); // begun before the signal: it completes
    expect(more).toEqual([]);
    const problem = expectRawProblem(refused, 503);
    expect(refused?.headers.connection).toBe("close");
    expect(problem).toMatchObject({ status: 503, title: expect.any(String) });
    expect(problem.instance).toBe("/stage/speed");

    // The listener is closed: a new connection is refused, not queued or answered.
    expect(await tryConnect(port)).toBe("refused");
    // Still shutting down (the stuck Thing holds it up until the deadline).
    expect(cli.child.exitCode).toBeNull();
  });
});
