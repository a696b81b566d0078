/**
 * A test client for MJPEG streams (`multipart/x-mixed-replace;boundary=frame`), on a real
 * node:http GET. It checks the response headers against the design note and parses the
 * body incrementally:
 *
 *   --frame\r\n  headers  \r\n\r\n  JPEG  \r\n  --frame\r\n … \r\n  --frame--\r\n
 *
 * A part with `Content-Length` is read by length; a part without one (the
 * `?advance_headers=1` mode) is read by walking the JPEG's marker segments to its EOI,
 * never by scanning for `\r\n--` (which can occur inside JPEG data).
 *
 * The reader can be paused (never reads: the server's socket fills up) or throttled
 * (pauses after every chunk), to play a slow client.
 */
import { EventEmitter } from "node:events";
import { type ClientRequest, type IncomingMessage, request } from "node:http";
import type { Socket } from "node:net";

export const BOUNDARY = "frame";
export const EXPECTED_CONTENT_TYPE = `multipart/x-mixed-replace;boundary=${BOUNDARY}`;
export const EXPECTED_CACHE_CONTROL = "no-store, no-cache, must-revalidate, max-age=0";

const DELIMITER = Buffer.from(`--${BOUNDARY}\r\n`);
const CLOSE_DELIMITER = Buffer.from(`--${BOUNDARY}--\r\n`);
const CRLF = Buffer.from("\r\n");
const HEADER_END = Buffer.from("\r\n\r\n");
/** A header block longer than this is a protocol error (ffmpeg wants lines under 128). */
const MAX_HEADER_BLOCK = 4096;

export interface MjpegPart {
  /** Part headers, names lower-cased. */
  readonly headers: Record<string, string>;
  /** Header lines exactly as received (without CRLF). */
  readonly headerLines: string[];
  readonly jpeg: Buffer;
  /** `performance.now()` when the part's last byte arrived. */
  readonly receivedAt: number;
}

export interface MjpegCloseOutcome {
  /** `--frame--\r\n` arrived. */
  closingDelimiter: boolean;
  /** The response emitted 'end' (EOF after the body), not an error. */
  ended: boolean;
  /** A socket or response error (e.g. ECONNRESET), if any. */
  error: Error | undefined;
  /** The body stopped in the middle of a part (or of a delimiter). */
  truncated: boolean;
  /** Clean end as the design defines it: closing delimiter, then end of response, no error. */
  clean: boolean;
  /** `performance.now()` when the response closed. */
  closedAt: number;
}

export interface MjpegConnectOptions {
  /** Start with the reader paused: nothing is read until `resume()`. */
  paused?: boolean;
  /** Throttle: after each chunk read, stop reading for this long. */
  readDelayMs?: number;
  /** Reject if no response headers arrive within this long. Default 5000 ms. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

type State = "delimiter" | "headers" | "body" | "done";

/** Deviations of MJPEG response headers from the design note; empty when all is right. */
export function headerProblems(headers: IncomingMessage["headers"]): string[] {
  const problems: string[] = [];
  const expectEqual = (name: string, expected: string) => {
    if (headers[name] !== expected) {
      problems.push(`${name}: expected '${expected}', got '${String(headers[name])}'`);
    }
  };
  expectEqual("content-type", EXPECTED_CONTENT_TYPE);
  expectEqual("cache-control", EXPECTED_CACHE_CONTROL);
  expectEqual("pragma", "no-cache");
  expectEqual("connection", "close");
  if (headers["transfer-encoding"] !== undefined) {
    problems.push(`transfer-encoding must be absent, got '${headers["transfer-encoding"]}'`);
  }
  if (headers["content-length"] !== undefined) {
    problems.push(`content-length must be absent, got '${headers["content-length"]}'`);
  }
  return problems;
}

/**
 * Index just past the EOI marker of the JPEG that starts at `start`, or -1 while it is
 * incomplete. Walks the marker segments and the entropy-coded data (0xFF00 stuffing,
 * RSTn), so a `\r\n--frame` inside the data cannot fool it. Throws on a non-JPEG.
 */
export function findJpegEnd(data: Buffer, start = 0): number {
  if (data.length - start < 2) return -1;
  if (data[start] !== 0xff || data[start + 1] !== 0xd8) {
    throw new Error("part body does not start with a JPEG SOI marker (FF D8)");
  }
  let i = start + 2;
  for (;;) {
    if (i + 1 >= data.length) return -1;
    if (data[i] !== 0xff) throw new Error(`JPEG: expected a marker at offset ${i - start}`);
    const marker = data[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (marker === 0xd9) return i + 2; // EOI
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      i += 2; // standalone markers
      continue;
    }
    if (i + 3 >= data.length) return -1;
    const segmentEnd = i + 2 + data.readUInt16BE(i + 2);
    if (marker !== 0xda) {
      i = segmentEnd;
      continue;
    }
    // Start of scan: entropy-coded data runs to the next marker that is not 0xFF00,
    // an RSTn, or fill.
    let j = segmentEnd;
    for (;;) {
      if (j >= data.length) return -1;
      const ff = data.indexOf(0xff, j);
      if (ff < 0 || ff + 1 >= data.length) return -1;
      const next = data[ff + 1]!;
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) {
        j = ff + 2;
      } else if (next === 0xff) {
        j = ff + 1;
      } else {
        i = ff;
        break;
      }
    }
  }
}

/**
 * One MJPEG viewer. Create it with `connectMjpeg`. Events: `part` (MjpegPart),
 * `headers` (a part's header block parsed), `close` (MjpegCloseOutcome).
 */
export class MjpegTestClient extends EventEmitter {
  readonly parts: MjpegPart[] = [];
  /** Header blocks parsed so far (one ahead of `parts` in advance-headers mode). */
  headerBlocks = 0;
  /** Body bytes received. */
  bytesReceived = 0;
  /** The first bytes of the body, as received (to check it starts with `--frame`). */
  bodyStart: Buffer = Buffer.alloc(0);
  /** Parse errors; the parser stops at the first. */
  readonly protocolErrors: string[] = [];
  /** Bytes after the closing delimiter (there must be none). */
  trailingBytes = 0;
  closingDelimiter = false;
  /** The stream ended with a part that has headers but no body (advance-headers mode). */
  emptyFinalPart = false;
  outcome: MjpegCloseOutcome | undefined;
  /** The client's local port: the server knows the viewer as `127.0.0.1:<localPort>`. */
  readonly localPort: number;
  /** Resolves when the response has closed, whoever closed it. */
  readonly closed: Promise<MjpegCloseOutcome>;

  #buffer: Buffer = Buffer.alloc(0);
  #state: State = "delimiter";
  #partHeaders: { headers: Record<string, string>; lines: string[] } | undefined;
  #contentLength: number | undefined;
  #ended = false;
  #error: Error | undefined;
  #paused = false;
  #throttle: NodeJS.Timeout | undefined;
  #resolveClosed!: (outcome: MjpegCloseOutcome) => void;
  readonly #errorBody: Buffer[] = [];

  constructor(
    readonly request: ClientRequest,
    readonly response: IncomingMessage,
    readonly socket: Socket,
    private readonly readDelayMs = 0,
  ) {
    super();
    this.localPort = socket.localPort ?? 0;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    response.on("data", (chunk: Buffer) => this.#onData(chunk));
    response.on("end", () => {
      this.#ended = true;
    });
    response.on("error", (error) => {
      this.#error ??= error;
    });
    request.on("error", (error) => {
      this.#error ??= error;
    });
    response.on("close", () => this.#onClose());
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  get headers(): IncomingMessage["headers"] {
    return this.response.headers;
  }

  /** Deviations of the response headers from the design note. */
  get headerProblems(): string[] {
    return headerProblems(this.response.headers);
  }

  /** Stop reading: the server's writes pile up in the kernel, then in Node, then drain stops. */
  pause(): void {
    this.#paused = true;
    clearTimeout(this.#throttle);
    this.response.pause();
  }

  resume(): void {
    this.#paused = false;
    clearTimeout(this.#throttle);
    this.response.resume();
  }

  /** Cut the connection from the client side (as a closed browser tab does). */
  destroy(): void {
    clearTimeout(this.#throttle);
    this.request.destroy();
    this.socket.destroy();
  }

  /** Resolve when `predicate()` holds (checked on every part, header block and close). */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          cleanup();
          resolve();
        } else if (this.outcome) {
          cleanup();
          reject(new Error(`stream closed while waiting for ${what} (${this.describe()})`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.describe()})`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off("part", check);
        this.off("headers", check);
        this.off("close", check);
      };
      this.on("part", check);
      this.on("headers", check);
      this.on("close", check);
    });
  }

  /** Resolve with the part at `index` (0-based) once it has arrived. */
  async part(index: number, timeoutMs = 5000): Promise<MjpegPart> {
    await this.waitFor(() => this.parts.length > index, `part #${index}`, timeoutMs);
    return this.parts[index]!;
  }

  /** Resolve with the first part whose X-Sequence is at least `sequence`. */
  async partWithSequence(sequence: number, timeoutMs = 5000): Promise<MjpegPart> {
    const find = () => this.parts.find((p) => Number(p.headers["x-sequence"]) >= sequence);
    await this.waitFor(() => find() !== undefined, `X-Sequence >= ${sequence}`, timeoutMs);
    return find()!;
  }

  /** Resolve with how the response ended, or reject after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<MjpegCloseOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`stream still open after ${timeoutMs} ms (${this.describe()})`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  describe(): string {
    return (
      `port ${this.localPort}: ${this.parts.length} parts, ${this.bytesReceived} bytes, ` +
      `state ${this.#state}, errors [${this.protocolErrors.join("; ")}]`
    );
  }

  /** The whole body of a non-200 response (e.g. Problem Details), once it has ended. */
  async errorBody(timeoutMs = 5000): Promise<string> {
    await this.waitClosed(timeoutMs);
    return Buffer.concat(this.#errorBody).toString("utf8");
  }

  #onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.status !== 200) {
      this.#errorBody.push(chunk);
      return;
    }
    if (this.bodyStart.length < 64) {
      this.bodyStart = Buffer.concat([this.bodyStart, chunk]).subarray(0, 64);
    }
    if (this.#state === "done") {
      this.trailingBytes += chunk.length;
    } else if (this.protocolErrors.length === 0) {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      try {
        this.#parse();
      } catch (error) {
        this.protocolErrors.push((error as Error).message);
      }
    }
    if (this.readDelayMs > 0 && !this.#paused && !this.outcome) {
      this.response.pause();
      clearTimeout(this.#throttle);
      this.#throttle = setTimeout(() => {
        if (!this.#paused) this.response.resume();
      }, this.readDelayMs);
    }
  }

  #parse(): void {
    for (;;) {
      const buffer = this.#buffer;
      if (this.#state === "delimiter") {
        if (buffer.length < DELIMITER.length) return;
        if (buffer.subarray(0, DELIMITER.length).equals(DELIMITER)) {
          this.#consume(DELIMITER.length);
          this.#state = "headers";
          continue;
        }
        if (buffer.length < CLOSE_DELIMITER.length) return;
        if (buffer.subarray(0, CLOSE_DELIMITER.length).equals(CLOSE_DELIMITER)) {
          this.trailingBytes += buffer.length - CLOSE_DELIMITER.length;
          this.#buffer = Buffer.alloc(0);
          this.#state = "done";
          this.closingDelimiter = true;
          return;
        }
        throw new Error(
          `expected '--${BOUNDARY}' delimiter, got ${JSON.stringify(buffer.subarray(0, 16).toString("latin1"))}`,
        );
      }
      if (this.#state === "headers") {
        const end = buffer.indexOf(HEADER_END);
        if (end < 0) {
          if (buffer.length > MAX_HEADER_BLOCK) throw new Error("part header block too long");
          return;
        }
        const lines = buffer.subarray(0, end).toString("latin1").split("\r\n");
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(":");
          if (colon <= 0) throw new Error(`malformed part header line ${JSON.stringify(line)}`);
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = headers["content-length"];
        if (length !== undefined && !/^\d+$/.test(length)) {
          throw new Error(`bad Content-Length '${length}'`);
        }
        this.#contentLength = length === undefined ? undefined : Number(length);
        this.#partHeaders = { headers, lines };
        this.#consume(end + HEADER_END.length);
        this.#state = "body";
        this.headerBlocks += 1;
        this.emit("headers", headers);
        continue;
      }
      if (this.#state === "body") {
        if (this.#contentLength === undefined && this.#atFinalEmptyPart()) return;
        const jpegEnd =
          this.#contentLength !== undefined
            ? buffer.length >= this.#contentLength
              ? this.#contentLength
              : -1
            : findJpegEnd(buffer);
        if (jpegEnd < 0 || buffer.length < jpegEnd + CRLF.length) return;
        if (!buffer.subarray(jpegEnd, jpegEnd + CRLF.length).equals(CRLF)) {
          throw new Error("part body is not followed by CRLF");
        }
        const part: MjpegPart = {
          headers: this.#partHeaders!.headers,
          headerLines: this.#partHeaders!.lines,
          // Copy: the part outlives the chunk it was cut from.
          jpeg: Buffer.from(buffer.subarray(0, jpegEnd)),
          receivedAt: performance.now(),
        };
        this.#consume(jpegEnd + CRLF.length);
        this.#state = "delimiter";
        this.parts.push(part);
        this.emit("part", part);
        continue;
      }
      return;
    }
  }

  /**
   * Advance-headers mode ends with the headers of a part that never comes, then
   * `\r\n--frame--\r\n`: an empty final part. True (and done) when that is what is here.
   */
  #atFinalEmptyPart(): boolean {
    const closing = Buffer.concat([CRLF, CLOSE_DELIMITER]);
    const buffer = this.#buffer;
    if (buffer.length === 0 || buffer[0] !== 0x0d) return false;
    const compared = Math.min(buffer.length, closing.length);
    if (!buffer.subarray(0, compared).equals(closing.subarray(0, compared))) return false;
    if (buffer.length < closing.length) return true; // wait for the rest
    this.trailingBytes += buffer.length - closing.length;
    this.#buffer = Buffer.alloc(0);
    this.#state = "done";
    this.closingDelimiter = true;
    this.emptyFinalPart = true;
    return true;
  }

  #consume(bytes: number): void {
    this.#buffer = this.#buffer.subarray(bytes);
  }

  #onClose(): void {
    if (this.outcome) return;
    clearTimeout(this.#throttle);
    // A socket error can arrive on the request just after the response closes.
    setImmediate(() => {
      const outcome: MjpegCloseOutcome = {
        closingDelimiter: this.closingDelimiter,
        ended: this.#ended,
        error: this.#error,
        truncated:
          this.#state !== "done" && (this.#state !== "delimiter" || this.#buffer.length > 0),
        clean: this.closingDelimiter && this.#ended && !this.#error && this.trailingBytes === 0,
        closedAt: performance.now(),
      };
      this.outcome = outcome;
      this.emit("close", outcome);
      this.#resolveClosed(outcome);
    });
  }
}

/**
 * GET `url` and resolve once the response headers arrived (any status: check `status`
 * and `headerProblems`). A non-200 body is still read: see `errorBody()`.
 */
export function connectMjpeg(
  url: string,
  options: MjpegConnectOptions = {},
): Promise<MjpegTestClient> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", agent: false, headers: options.headers });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no response headers from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    req.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.once("response", (response) => {
      clearTimeout(timer);
      const client = new MjpegTestClient(req, response, req.socket!, options.readDelayMs);
      if (options.paused) client.pause();
      resolve(client);
    });
    req.end();
  });
}
