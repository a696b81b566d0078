/**
 * HTTP/1.1 below `fetch`: a GET whose path is sent byte for byte (`fetch` would normalise
 * `..` and `%2e`), and a raw TCP connection whose requests the test writes itself
 * (keep-alive, pipelining, `Expect: 100-continue`) and whose responses it splits and reads.
 */
import { once } from "node:events";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { deferred, within } from "./within.js";

/** A response read with node:http. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET with the path sent exactly as given (no `..` or `%2e` normalisation). */
export function rawGet(base: string, path: string): Promise<RawResponse> {
  return rawRequest(base, path, "GET");
}

/**
 * POST `body` as JSON on a connection of its own (no keep-alive pool): a client that
 * floods a server opens many of them.
 */
export function rawPost(url: string, body: unknown): Promise<RawResponse> {
  const { origin, pathname, search } = new URL(url);
  return rawRequest(origin, pathname + search, "POST", JSON.stringify(body));
}

function rawRequest(
  base: string,
  path: string,
  method: string,
  json?: string,
): Promise<RawResponse> {
  const url = new URL(base);
  const headers =
    json === undefined
      ? {}
      : { "content-type": "application/json", "content-length": Buffer.byteLength(json) };
  return within(
    new Promise<RawResponse>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path, method, agent: false, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(json);
    }),
    `${method} ${path}`,
  );
}

/**
 * One TCP connection to 127.0.0.1: `text` collects what it receives (latin1), `waitFor`,
 * `until` and `responses` resolve once enough of it has arrived, `closed` once the socket
 * has closed (rejecting on a socket error such as ECONNRESET). All waits are bounded.
 */
export class RawConnection {
  text = "";
  readonly closed: Promise<void>;
  readonly #waiters: { test: (text: string) => boolean; resolve: () => void }[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.text += chunk;
      for (const waiter of [...this.#waiters]) {
        if (waiter.test(this.text)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
    socket.on("error", () => {});
    this.closed = once(socket, "close").then(() => undefined);
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = connect({ host: "127.0.0.1", port });
    await within(once(socket, "connect"), "the TCP connection");
    return new RawConnection(socket);
  }

  /** Wait until what has arrived so far passes `test`. */
  waitFor(test: (text: string) => boolean, what: string): Promise<void> {
    if (test(this.text)) return Promise.resolve();
    const { promise, resolve } = deferred();
    this.#waiters.push({ test, resolve });
    return within(promise, what);
  }

  /** Wait until what has arrived so far matches `pattern`. */
  until(pattern: RegExp, what: string): Promise<void> {
    return this.waitFor((text) => pattern.test(text), what);
  }

  /** Wait until `count` whole responses have arrived. */
  responses(count: number, what: string): Promise<void> {
    return this.waitFor((text) => parseResponses(text, { partial: true }).length >= count, what);
  }
}

/** A response split out of what a raw connection received. */
export interface ParsedResponse {
  status: number;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Split what a socket received into HTTP/1.1 responses (Content-Length framing only).
 * An incomplete last response is an error, or with `partial` (while still receiving)
 * left out.
 */
export function parseResponses(raw: string, { partial = false } = {}): ParsedResponse[] {
  const responses: ParsedResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) {
      if (partial) break;
      throw new Error(`incomplete response head: ${JSON.stringify(rest)}`);
    }
    const [statusLine, ...lines] = rest.slice(0, end).split("\r\n");
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? "")?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = status === 100 || status === 204 ? 0 : Number(headers["content-length"] ?? 0);
    if (rest.length < end + 4 + length) {
      if (partial) break;
      throw new Error(`incomplete response body: ${JSON.stringify(rest)}`);
    }
    responses.push({ status, headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return responses;
}
