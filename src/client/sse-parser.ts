/**
 * An incremental parser of `text/event-stream` (WHATWG HTML, "server-sent events"):
 * feed it text as it arrives, in any chunking, and it returns the complete messages.
 * It honours `event:`, `data:` (several lines join with "\n"), `id:` (kept across
 * messages, as `lastEventId`) and `retry:`, ignores comments, and accepts CRLF, LF or CR
 * line ends. Browser-safe.
 */

/** One dispatched server-sent event. */
export interface SseMessage {
  /** The `event:` field, or "message" when there was none. */
  event: string;
  data: string;
  /** The last `id:` seen so far (the stream's Last-Event-ID), "" before any. */
  lastEventId: string;
}

export class SseParser {
  #lastEventId: string;
  #retryMs: number | undefined;
  #pending = "";
  /** The previous chunk ended in CR: an LF starting the next one belongs to it. */
  #skipLineFeed = false;
  #eventType = "";
  #data: string[] = [];

  constructor(lastEventId = "") {
    this.#lastEventId = lastEventId;
  }

  /** The last event id seen (what a reconnect sends as Last-Event-ID). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The reconnection time the server asked for with `retry:`, if it did. */
  get retryMs(): number | undefined {
    return this.#retryMs;
  }

  /**
   * Parse the next piece of the stream; returns the messages it completed.
   *
   * @example
   * ```ts
   * const parser = new SseParser();
   * parser.push("event: speed\ndata: 12"); // []
   * parser.push("\nid: 7\n\n"); // [{ event: "speed", data: "12", lastEventId: "7" }]
   * ```
   */
  push(text: string): SseMessage[] {
    // An empty piece must not forget that the last one ended in CR.
    if (text === "") return [];
    let input = text;
    if (this.#skipLineFeed && input.startsWith("\n")) input = input.slice(1);
    this.#skipLineFeed = false;
    const buffer = this.#pending + input;
    const messages: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const end = nextLineEnd(buffer, start);
      if (end === -1) break;
      const line = buffer.slice(start, end);
      if (buffer[end] === "\r") {
        if (end + 1 === buffer.length) {
          this.#skipLineFeed = true;
          start = end + 1;
        } else {
          start = buffer[end + 1] === "\n" ? end + 2 : end + 1;
        }
      } else {
        start = end + 1;
      }
      const message = this.#line(line);
      if (message) messages.push(message);
    }
    this.#pending = buffer.slice(start);
    return messages;
  }

  #line(line: string): SseMessage | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#eventType = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\u0000")) this.#lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#retryMs = Number(value);
        break;
      default:
      // Unknown fields are ignored, as the standard says.
    }
    return undefined;
  }

  #dispatch(): SseMessage | undefined {
    const data = this.#data;
    const event = this.#eventType;
    this.#data = [];
    this.#eventType = "";
    if (data.length === 0) return undefined;
    return {
      event: event === "" ? "message" : event,
      data: data.join("\n"),
      lastEventId: this.#lastEventId,
    };
  }
}

function nextLineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return -1;
}
