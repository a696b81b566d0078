/**
 * A reconnecting reader of server-sent events over `fetch` (not EventSource: that has no
 * custom headers, no AbortSignal and no way to tell a 204 from a failure). It yields each
 * message; when the connection drops, or the server ends the stream, it reconnects after
 * the server's `retry:` time (or `initialDelayMs`), doubling the wait after each failed
 * attempt, and sends `Last-Event-ID` so the server can replay what was missed. It stops
 * cleanly when its signal aborts or a reconnect is answered 204 (the SSE way of saying
 * "there is nothing more"). Browser-safe.
 */
import { abortableSleep } from "./abortable-sleep.js";
import { ConnectionError, HttpError, ProtocolError } from "./client-errors.js";
import { isEventStreamType } from "./form-selection.js";
import { type HttpRequester, messageOf } from "./http-requester.js";
import { type SseMessage, SseParser } from "./sse-parser.js";

/** How to reconnect a dropped event stream. */
export interface ReconnectOptions {
  /** Consecutive failed attempts before giving up with ConnectionError; default 10. */
  maxAttempts?: number;
  /** First wait when the server sent no `retry:`; default 1000 ms. */
  initialDelayMs?: number;
  /** Longest wait between attempts; default 30 000 ms. */
  maxDelayMs?: number;
}

export interface EventStreamOptions {
  method?: string;
  /** Stops the stream (the iteration ends without an error). */
  signal?: AbortSignal | undefined;
  /** `false`: never reconnect; the iteration ends when the connection does. */
  reconnect?: ReconnectOptions | false;
  /** Called each time a connection is open (the server is now sending events). */
  onOpen?: () => void;
  /** An already open event-stream response to read first (its request had no Last-Event-ID). */
  firstResponse?: Response;
}

const DEFAULTS = { maxAttempts: 10, initialDelayMs: 1000, maxDelayMs: 30_000 };

/** Statuses that mean "try again later" rather than "this will never work". */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

/**
 * Read the event stream at `url`, reconnecting as described above.
 *
 * @example
 * ```ts
 * for await (const message of readEventStream(requester, url, { signal })) {
 *   console.log(message.event, JSON.parse(message.data));
 * }
 * ```
 */
export async function* readEventStream(
  requester: HttpRequester,
  url: string,
  options: EventStreamOptions = {},
): AsyncGenerator<SseMessage, void, undefined> {
  const reconnect = options.reconnect === false ? undefined : { ...DEFAULTS, ...options.reconnect };
  const method = options.method ?? "GET";
  // One controller for this stream's requests: ending the iteration early aborts them.
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  let lastEventId = "";
  let retryMs: number | undefined;
  let failures = 0;
  let firstResponse = options.firstResponse;

  /** Wait before the next attempt; false when the stream should end instead. */
  const waitToReconnect = async (cause: unknown): Promise<boolean> => {
    if (controller.signal.aborted) return false;
    if (!reconnect) return false;
    if (failures >= reconnect.maxAttempts) {
      throw new ConnectionError(
        `the event stream ${url} could not be re-opened after ${failures} attempts: ${messageOf(cause)}`,
        { url, cause },
      );
    }
    const base = retryMs ?? reconnect.initialDelayMs;
    const delay = Math.min(reconnect.maxDelayMs, base * 2 ** failures);
    return abortableSleep(delay, controller.signal);
  };

  try {
    for (;;) {
      let response: Response;
      try {
        response =
          firstResponse ??
          (await requester.send(
            url,
            {
              method,
              accept: "text/event-stream",
              headers: lastEventId === "" ? {} : { "last-event-id": lastEventId },
              signal: controller.signal,
            },
            (status) => reconnect !== undefined && RETRYABLE_STATUSES.has(status),
          ));
      } catch (error) {
        if (controller.signal.aborted) return;
        // A connection that cannot be made is retried; an answer like 404 is final.
        if (!(error instanceof ConnectionError) || !reconnect) throw error;
        failures += 1;
        if (!(await waitToReconnect(error))) return;
        continue;
      }
      firstResponse = undefined;
      if (response.status === 204) return;
      if (RETRYABLE_STATUSES.has(response.status)) {
        await response.body?.cancel().catch(() => {});
        failures += 1;
        if (
          !(await waitToReconnect(
            new HttpError(`${response.status}`, { status: response.status, url }),
          ))
        )
          return;
        continue;
      }
      if (!isEventStreamType(response.headers.get("content-type")) || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new ProtocolError(
          `${method} ${url} answered '${response.headers.get("content-type")}', not an event stream`,
          { url, status: response.status },
        );
      }
      failures = 0;
      options.onOpen?.();
      const parser = new SseParser(lastEventId);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let dropped: unknown;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const message of parser.push(decoder.decode(value, { stream: true }))) {
            lastEventId = message.lastEventId;
            yield message;
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        dropped = error; // the connection broke: reconnect below
      } finally {
        lastEventId = parser.lastEventId;
        retryMs = parser.retryMs ?? retryMs;
        reader.cancel().catch(() => {});
      }
      if (!(await waitToReconnect(dropped ?? new Error("the server ended the stream")))) return;
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    controller.abort();
  }
}
