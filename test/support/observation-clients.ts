/**
 * Clients for the observation tests: a server-sent-events parser, a raw SSE reader on
 * node:http (custom headers such as `Last-Event-ID`, and a view of how the response
 * ended), an EventSource (the `eventsource` package) that records named messages, and a
 * websocket (`ws`) that records JSON messages and its close code. Every wait is bounded;
 * `closeObservationClients()` closes whatever a test left open.
 */
import { type IncomingMessage, request } from "node:http";
import { EventSource } from "eventsource";
import WebSocket from "ws";
import { deferred, within } from "./within.js";

/** One SSE message as the wire carried it. */
export interface SseMessage {
  event: string;
  data: string;
  /** The `id:` field, when the message had one. */
  id: string | undefined;
}

/**
 * Split SSE text into complete messages (WHATWG rules for the fields used here: `event`,
 * `data` (joined by newlines), `id`; comment lines ignored). Returns what is left over.
 */
export function parseSse(text: string): { messages: SseMessage[]; rest: string } {
  const messages: SseMessage[] = [];
  const normalised = text.replace(/\r\n?/g, "\n");
  const blocks = normalised.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    const data: string[] = [];
    let id: string | undefined;
    let fields = 0;
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      fields += 1;
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (fields > 0 && data.length > 0) messages.push({ event, data: data.join("\n"), id });
  }
  return { messages, rest };
}

/** How a raw SSE response finished: a clean end of the body, or a cut connection. */
export type SseEnding = "end" | "aborted";

const openRawReaders = new Set<RawSseReader>();
const openEventSources = new Set<EventSource>();
const openSockets = new Set<WebSocket>();

/**
 * GET over node:http with `Accept: text/event-stream` (and any other headers): status,
 * headers, the parsed messages as they arrive, and `ended` (how the body finished).
 */
export class RawSseReader {
  messages: SseMessage[] = [];
  text = "";
  readonly ended: Promise<SseEnding>;
  #rest = "";
  readonly #waiters: { test: () => boolean; resolve: () => void }[] = [];
  readonly #response: IncomingMessage;

  private constructor(response: IncomingMessage) {
    this.#response = response;
    response.setEncoding("utf8");
    const { promise, resolve } = deferred<SseEnding>();
    this.ended = promise;
    response.on("data", (chunk: string) => {
      this.text += chunk;
      const parsed = parseSse(this.#rest + chunk);
      this.#rest = parsed.rest;
      this.messages.push(...parsed.messages);
      this.#check();
    });
    response.on("end", () => resolve("end"));
    response.on("aborted", () => resolve("aborted"));
    response.on("error", () => resolve("aborted"));
    response.on("close", () => {
      resolve(response.complete ? "end" : "aborted");
      openRawReaders.delete(this);
    });
  }

  get status(): number {
    return this.#response.statusCode ?? 0;
  }

  get headers(): IncomingMessage["headers"] {
    return this.#response.headers;
  }

  /** Open the request; resolves once the response head has arrived. */
  static open(url: string, headers: Record<string, string> = {}): Promise<RawSseReader> {
    const target = new URL(url);
    return within(
      new Promise<RawSseReader>((resolve, reject) => {
        const req = request(
          {
            host: target.hostname,
            port: target.port,
            path: target.pathname + target.search,
            method: "GET",
            agent: false,
            headers: { accept: "text/event-stream", ...headers },
          },
          (response) => {
            const reader = new RawSseReader(response);
            openRawReaders.add(reader);
            resolve(reader);
          },
        );
        req.on("error", reject);
        req.end();
      }),
      `the response head of GET ${url}`,
    );
  }

  /** Wait until at least `count` messages have arrived. */
  waitForCount(count: number, what: string): Promise<void> {
    return this.waitFor(() => this.messages.length >= count, what);
  }

  /** Wait until `test` holds for the messages so far. */
  waitFor(test: () => boolean, what: string, ms?: number): Promise<void> {
    if (test()) return Promise.resolve();
    const { promise, resolve } = deferred();
    this.#waiters.push({ test, resolve });
    return within(promise, what, ms);
  }

  close(): void {
    this.#response.destroy();
    openRawReaders.delete(this);
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.test()) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

/** A message an EventSource dispatched under a name. */
export interface ReceivedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * An EventSource listening to the given event names (with `addEventListener`), recording
 * every message and every `error` event (status code when the server gave one).
 */
export class RecordingEventSource {
  readonly source: EventSource;
  readonly received: ReceivedEvent[] = [];
  readonly errors: { code: number | undefined; readyState: number }[] = [];
  /** Messages dispatched as the unnamed `message` type (the server should send none). */
  readonly unnamed: ReceivedEvent[] = [];
  readonly #waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(url: string, names: readonly string[]) {
    this.source = new EventSource(url);
    openEventSources.add(this.source);
    const record = (into: ReceivedEvent[]) => (event: Event) => {
      const message = event as MessageEvent<string>;
      into.push({ type: message.type, data: message.data, lastEventId: message.lastEventId });
      this.#check();
    };
    for (const name of names) this.source.addEventListener(name, record(this.received));
    this.source.addEventListener("message", record(this.unnamed));
    this.source.addEventListener("error", (event) => {
      this.errors.push({
        code: (event as Event & { code?: number }).code,
        readyState: this.source.readyState,
      });
      this.#check();
    });
  }

  /** Resolves once the stream is open (response head received). */
  opened(what = "the EventSource to open"): Promise<void> {
    if (this.source.readyState === EventSource.OPEN) return Promise.resolve();
    return within(
      new Promise<void>((resolve) =>
        this.source.addEventListener("open", () => resolve(), { once: true }),
      ),
      what,
    );
  }

  waitFor(test: () => boolean, what: string, ms?: number): Promise<void> {
    if (test()) return Promise.resolve();
    const { promise, resolve } = deferred();
    this.#waiters.push({ test, resolve });
    return within(promise, what, ms);
  }

  close(): void {
    this.source.close();
    openEventSources.delete(this.source);
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.test()) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

/** A websocket that records every JSON message and how it closed. */
export class RecordingWebSocket {
  readonly socket: WebSocket;
  readonly received: Record<string, unknown>[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiters: { test: () => boolean; resolve: () => void }[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on("message", (data) => {
      this.received.push(JSON.parse(String(data)) as Record<string, unknown>);
      this.#check();
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", (code, reason) => resolve({ code, reason: String(reason) })),
    );
    socket.on("error", () => {});
  }

  static async open(url: string): Promise<RecordingWebSocket> {
    const socket = new WebSocket(url);
    openSockets.add(socket);
    const client = new RecordingWebSocket(socket);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
      }),
      `the websocket ${url} to open`,
    );
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Wait until `test` holds for the messages so far. */
  waitFor(test: () => boolean, what: string, ms?: number): Promise<void> {
    if (test()) return Promise.resolve();
    const { promise, resolve } = deferred();
    this.#waiters.push({ test, resolve });
    return within(promise, what, ms);
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.test()) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}

/** Close every EventSource, raw SSE reader and websocket still open (for afterEach). */
export function closeObservationClients(): void {
  for (const source of openEventSources) source.close();
  openEventSources.clear();
  for (const reader of [...openRawReaders]) reader.close();
  openRawReaders.clear();
  for (const socket of openSockets) socket.terminate();
  openSockets.clear();
}
