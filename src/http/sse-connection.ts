/**
 * One server-sent-events response (WoT HTTP SSE Profile). Messages carry `event:` (the
 * affordance name), `data:` (JSON) and an increasing `id:`. A heartbeat comment finds
 * dead clients. Back-pressure: while the socket is full, property values are coalesced
 * (only the latest of each is kept) and other messages are queued up to a bound; a
 * client past the bound is dropped with a log line. Memory never grows with a slow client.
 */
import type { ServerResponse } from "node:http";
import type { ThingLogger } from "../model/logger.js";

export interface SseMessage {
  id: number;
  event: string;
  /** Already JSON. */
  data: string;
}

export interface SseOptions {
  /** Comment line every this many ms; default 15 000. */
  heartbeatMs?: number;
  /** Most queued (not coalescable) messages while the socket is full; default 256. */
  maxQueued?: number;
  /**
   * Write each message twice, named (`event:`, for the SSE Profile) and unnamed (for
   * clients that only listen to `onmessage`, such as node-wot's), with the same `id:`.
   */
  unnamedTwins?: boolean;
  label: string;
  logger: ThingLogger;
}

export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store, no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
} as const;

export class SseConnection {
  readonly #response: ServerResponse;
  readonly #options: Required<Omit<SseOptions, "label" | "logger">> &
    Pick<SseOptions, "label" | "logger">;
  #blocked = false;
  #ended = false;
  /** Latest message per coalescing key (e.g. one per property) while blocked. */
  readonly #coalesced = new Map<string, SseMessage>();
  readonly #queued: SseMessage[] = [];
  readonly #heartbeat: NodeJS.Timeout;
  readonly #format: (message: SseMessage) => string;
  messagesSent = 0;
  messagesCoalesced = 0;

  constructor(response: ServerResponse, options: SseOptions) {
    this.#response = response;
    this.#options = { heartbeatMs: 15_000, maxQueued: 256, unnamedTwins: false, ...options };
    this.#format = this.#options.unnamedTwins ? formatWithTwin : format;
    response.on("drain", this.#onDrain);
    this.#heartbeat = setInterval(() => {
      if (!this.#blocked && !this.#ended) this.#write(": heartbeat\n\n");
    }, this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Send, or while the socket is full: keep only the latest per `coalesceKey`, or queue
   * (dropping the client past `maxQueued`).
   */
  send(message: SseMessage, coalesceKey?: string): void {
    if (this.#ended) return;
    if (!this.#blocked) {
      this.#write(this.#format(message));
      return;
    }
    if (coalesceKey !== undefined) {
      if (this.#coalesced.has(coalesceKey)) this.messagesCoalesced += 1;
      this.#coalesced.set(coalesceKey, message);
      return;
    }
    this.#queued.push(message);
    if (this.#queued.length > this.#options.maxQueued) {
      this.#options.logger.warn(
        { client: this.#options.label, queued: this.#queued.length },
        "dropping SSE client that does not keep up",
      );
      this.destroy();
    }
  }

  /**
   * Clean end: what still waits (at most the queue bound) is written first, so a slow
   * reader still gets, say, an invocation's final status; then the response ends.
   */
  end(): void {
    if (this.#ended) return;
    const waiting = [...this.#queued, ...this.#coalesced.values()].sort((a, b) => a.id - b.id);
    this.#release();
    this.#response.end(waiting.map(this.#format).join(""));
  }

  destroy(): void {
    this.#release();
    this.#response.destroy();
  }

  /** The socket closed: forget everything at once. */
  release(): void {
    this.#release();
  }

  #release(): void {
    this.#ended = true;
    clearInterval(this.#heartbeat);
    this.#coalesced.clear();
    this.#queued.length = 0;
  }

  #write(text: string): void {
    this.messagesSent += 1;
    if (!this.#response.write(text)) this.#blocked = true;
  }

  #onDrain = (): void => {
    if (!this.#blocked || this.#ended) return;
    this.#blocked = false;
    // Replay what waited in id order; a coalesced value sits where its latest change was.
    const waiting = [...this.#queued, ...this.#coalesced.values()].sort((a, b) => a.id - b.id);
    this.#queued.length = 0;
    this.#coalesced.clear();
    for (const [index, message] of waiting.entries()) {
      if (this.#blocked) {
        // Full again: put the rest back (as queued, keeping their order).
        this.#queued.push(...waiting.slice(index));
        return;
      }
      this.#write(this.#format(message));
    }
  };
}

function format({ id, event, data }: SseMessage): string {
  return `event: ${event}\ndata: ${data}\nid: ${id}\n\n`;
}

/** One write for both, so a reader never sees one without the other. */
function formatWithTwin({ id, event, data }: SseMessage): string {
  return `event: ${event}\ndata: ${data}\nid: ${id}\n\ndata: ${data}\nid: ${id}\n\n`;
}
