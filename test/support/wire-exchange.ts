/**
 * One HTTP/1.1 exchange on a fresh TCP connection, bytes in and bytes out: the test
 * writes the request exactly as it wants it (malformed ones included), and the response
 * is parsed strictly here, so a response that breaks HTTP/1.1 framing is reported rather
 * than smoothed over the way `fetch` or `node:http` would.
 *
 * What counts as well formed: a status line `HTTP/1.x NNN reason`, header lines
 * `token: value`, at most one Content-Length (and never together with
 * Transfer-Encoding), a body of exactly the announced length or valid chunked framing,
 * no body for HEAD, 204 and 304, and nothing after a response that says
 * `Connection: close` (collected in `trailing` for the caller to judge). Long-lived answers (MJPEG, SSE, a websocket upgrade) are valid
 * once their head has arrived: the connection is then cut.
 */
import { connect } from "node:net";

/** A parsed response. Header names are lower-cased; repeated headers keep every value. */
export interface WireResponse {
  status: number;
  statusLine: string;
  headers: [name: string, value: string][];
  /** The body, de-chunked; empty for HEAD, 1xx, 204, 304 and long-lived responses. */
  body: Buffer;
  /** An endless response (MJPEG, SSE) or a 101 upgrade: only the head was read. */
  longLived: boolean;
}

/** The last value of header `name` (lower-case), if any. */
export function headerOf(response: WireResponse, name: string): string | undefined {
  let value: string | undefined;
  for (const [key, v] of response.headers) if (key === name) value = v;
  return value;
}

export interface ExchangeResult {
  /** The final response, when one arrived whole. */
  response?: WireResponse;
  /** Interim (1xx) statuses before it, e.g. 100 Continue. */
  interim: number[];
  /** Every way the bytes received break HTTP/1.1; empty when well formed. */
  violations: string[];
  /** The server closed (or reset) the connection before any response. */
  closedWithoutResponse: boolean;
  /** Nothing complete arrived within the time allowed. */
  timedOut: boolean;
  /**
   * Bytes that followed a response saying `Connection: close` (with `checkTrailingBytes`).
   * Well formed is none; the caller decides (see `trailingViolation`).
   */
  trailing: Buffer;
  /** The first bytes received, latin1, for failure messages. */
  received: string;
}

export interface ExchangeOptions {
  /** The request method, as sent: HEAD responses have no body. */
  method: string;
  /** Bound on the whole exchange. */
  timeoutMs: number;
  /**
   * Check that nothing follows a `Connection: close` response. Off when the request
   * deliberately carried extra bytes (a short Content-Length), which the server may
   * answer as a second request.
   */
  checkTrailingBytes: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/;
const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");

/** Send `request` to 127.0.0.1:`port` and read one response; never rejects. */
export function exchange(
  port: number,
  request: Buffer,
  options: ExchangeOptions,
): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const result: ExchangeResult = {
      interim: [],
      violations: [],
      closedWithoutResponse: false,
      timedOut: false,
      trailing: Buffer.alloc(0),
      received: "",
    };
    let buffer = Buffer.alloc(0);
    let finished = false;
    /** Set once the final response is whole; then only trailing bytes are watched for. */
    let awaitingClose = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      // Once the response is whole, a slow close is no fault.
      if (!awaitingClose) result.timedOut = true;
      finish();
    }, options.timeoutMs);

    socket.on("data", (chunk: Buffer) => {
      if (result.received.length < 2048) result.received += chunk.toString("latin1");
      if (awaitingClose) {
        result.trailing = Buffer.concat([result.trailing, chunk]);
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      parse(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (!finished && !awaitingClose) parse(true);
      if (!result.response && result.violations.length === 0) {
        result.closedWithoutResponse = true;
      }
      finish();
    });
    socket.write(request);

    /** Take whole responses off `buffer`; `ended`: the connection has closed. */
    function parse(ended: boolean): void {
      for (;;) {
        const headEnd = buffer.indexOf(HEAD_END);
        if (headEnd < 0) {
          if (ended && buffer.length > 0) {
            result.violations.push(`the connection closed inside a response head`);
          }
          return;
        }
        const head = parseHead(buffer.subarray(0, headEnd).toString("latin1"), result.violations);
        if (!head) {
          finish();
          return;
        }
        const rest = buffer.subarray(headEnd + 4);
        const { status } = head;
        if (status >= 100 && status < 200 && status !== 101) {
          result.interim.push(status);
          buffer = rest;
          continue;
        }
        const longLived = status === 101 || isEndless(head.headers);
        if (longLived || options.method === "HEAD" || status === 204 || status === 304) {
          result.response = { ...head, body: Buffer.alloc(0), longLived };
          if (longLived) finish();
          else complete(rest, head.headers);
          return;
        }
        const body = readBody(rest, head.headers, ended, result.violations);
        if (body === "incomplete") return;
        if (body === "invalid") finish();
        else {
          result.response = { ...head, body: body.body, longLived: false };
          complete(body.rest, head.headers);
        }
        return;
      }
    }

    /** The response is whole: watch for bytes after a `Connection: close` answer. */
    function complete(rest: Buffer, headers: [string, string][]): void {
      const closes = headers.some(
        ([name, value]) => name === "connection" && /\bclose\b/i.test(value),
      );
      if (!closes || !options.checkTrailingBytes) {
        finish();
        return;
      }
      awaitingClose = true;
      result.trailing = rest;
    }
  });
}

function isEndless(headers: [string, string][]): boolean {
  const type = headers.find(([name]) => name === "content-type")?.[1] ?? "";
  return /^(text\/event-stream|multipart\/x-mixed-replace)\b/i.test(type);
}

function parseHead(
  text: string,
  violations: string[],
): { status: number; statusLine: string; headers: [string, string][] } | undefined {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = STATUS_LINE.exec(statusLine);
  if (!match) {
    violations.push(`bad status line ${JSON.stringify(statusLine)}`);
    return undefined;
  }
  const headers: [string, string][] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name) || /[\r\n\0]/.test(line)) {
      violations.push(`bad header line ${JSON.stringify(line)}`);
      continue;
    }
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  const lengths = new Set(headers.filter(([n]) => n === "content-length").map(([, v]) => v));
  if (lengths.size > 1) violations.push(`several Content-Length values: ${[...lengths]}`);
  const chunked = headers.some(([n, v]) => n === "transfer-encoding" && /chunked/i.test(v));
  if (chunked && lengths.size > 0) violations.push("both Content-Length and chunked encoding");
  for (const length of lengths) {
    if (!/^\d+$/.test(length)) violations.push(`Content-Length ${JSON.stringify(length)}`);
  }
  return { status: Number(match[1]), statusLine, headers };
}

/** The body by the head's framing, or "incomplete" (wait for more), or "invalid". */
function readBody(
  data: Buffer,
  headers: [string, string][],
  ended: boolean,
  violations: string[],
): { body: Buffer; rest: Buffer } | "incomplete" | "invalid" {
  const chunked = headers.some(([n, v]) => n === "transfer-encoding" && /chunked/i.test(v));
  if (chunked) return readChunked(data, ended, violations);
  const length = headers.find(([n]) => n === "content-length")?.[1];
  if (length !== undefined) {
    const size = Number(length);
    if (data.length >= size) return { body: data.subarray(0, size), rest: data.subarray(size) };
    if (!ended) return "incomplete";
    violations.push(`the body ended after ${data.length} of ${size} bytes`);
    return "invalid";
  }
  // No framing: the body runs to the end of the connection.
  return ended ? { body: data, rest: Buffer.alloc(0) } : "incomplete";
}

function readChunked(
  data: Buffer,
  ended: boolean,
  violations: string[],
): { body: Buffer; rest: Buffer } | "incomplete" | "invalid" {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf(CRLF, at);
    if (lineEnd < 0) break;
    const sizeText = data.subarray(at, lineEnd).toString("latin1").split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) {
      violations.push(`bad chunk size ${JSON.stringify(sizeText)}`);
      return "invalid";
    }
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) {
      // Trailers (if any) end with an empty line.
      const end = data.indexOf(HEAD_END, lineEnd);
      const bare = data.subarray(lineEnd, lineEnd + 4).equals(Buffer.from("\r\n\r\n"));
      if (bare) return { body: Buffer.concat(parts), rest: data.subarray(lineEnd + 4) };
      if (end >= 0) return { body: Buffer.concat(parts), rest: data.subarray(end + 4) };
      break;
    }
    const start = lineEnd + 2;
    if (data.length < start + size + 2) break;
    if (!data.subarray(start + size, start + size + 2).equals(CRLF)) {
      violations.push("a chunk is not followed by CRLF");
      return "invalid";
    }
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
  if (!ended) return "incomplete";
  violations.push("the connection closed inside a chunked body");
  return "invalid";
}

/** The violation trailing bytes make, if any. */
export function trailingViolation(result: ExchangeResult): string | undefined {
  if (result.trailing.length === 0) return undefined;
  return `${result.trailing.length} bytes followed a response that said Connection: close`;
}

/** A request or response as printable text for a failure message (bounded). */
export function printable(bytes: Buffer | string, max = 1500): string {
  const text = typeof bytes === "string" ? bytes : bytes.toString("latin1");
  const shown = text.length > max ? `${text.slice(0, max)}… (${text.length} bytes)` : text;
  return shown.replace(/[^\x20-\x7e\n]/g, (c) =>
    c === "\r" ? "\\r" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
