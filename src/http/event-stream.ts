import type { FastifyReply, FastifyRequest } from "fastify";
import { InvalidInputError } from "../errors.js";
import type { ThingLogger } from "../model/logger.js";
import type {
  Notification,
  NotificationFilter,
  ObservationHub,
} from "../runtime/observation-hub.js";
import type { LongLivedRegistry } from "./long-lived-registry.js";
import { SSE_HEADERS, SseConnection, type SseMessage } from "./sse-connection.js";

/**
 * Strict negotiation (HTTP SSE Profile): only an explicit `text/event-stream` in Accept
 * selects the event stream; `*\/*` and browsers' defaults get the plain JSON answer.
 */
export function acceptsEventStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? "").split(",").some((range) => {
    const [type, ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    if (type !== "text/event-stream") return false;
    const q = params.find((param) => param.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0; // q=0 means "not this one"
  });
}

/**
 * Whether the request asks (`?messages=both`) for each message named and unnamed: the
 * form listed first in a TD for node-wot 0.9, whose client hears only unnamed messages.
 */
export function wantsUnnamedTwins(request: FastifyRequest): boolean {
  const messages = (request.query as Record<string, unknown> | undefined)?.messages;
  if (messages === undefined) return false;
  if (messages === "both") return true;
  throw new InvalidInputError(
    `query 'messages' may only be 'both' (each message named and unnamed), not ${JSON.stringify(messages)}`,
    [{ field: "/messages", rule: "enum", message: "must be 'both'" }],
  );
}

// One JSON text per notification, however many subscribers it goes to.
const serialized = new WeakMap<Notification, string>();
function dataJson(notification: Notification): string {
  let text = serialized.get(notification);
  if (text === undefined) {
    text = JSON.stringify(notification.data ?? null);
    serialized.set(notification, text);
  }
  return text;
}

export interface EventStreamSpec {
  /** Names the connection in logs, e.g. `stage/position ← 127.0.0.1:5123`. */
  label: string;
  /** Which notifications this stream carries. */
  filter: NotificationFilter;
  /** Turn a notification into the message's data (JSON-able). Default: its data. */
  data?: (notification: Notification) => unknown;
  /** Property values are coalesced for slow clients; events and statuses are not. */
  coalesce?: boolean;
  /** Messages to send first (e.g. an invocation's current status). */
  initial?: SseMessage[];
  /** End the stream after sending this notification (e.g. an invocation's final status). */
  endAfter?: (notification: Notification) => boolean;
  /** End right after the initial messages (there is nothing more to come). */
  endAfterInitial?: boolean;
  /** Each message also unnamed (see `wantsUnnamedTwins`). */
  unnamedTwins?: boolean;
}

/** Opens SSE responses: replay after Last-Event-ID, then live notifications; registered as long-lived. */
export class EventStreams {
  constructor(
    private readonly hub: ObservationHub,
    private readonly longLived: LongLivedRegistry,
    private readonly logger: ThingLogger,
  ) {}

  /** Id of the newest notification so far: a message about "now" carries it. */
  get lastId(): number {
    return this.hub.lastId;
  }

  open(request: FastifyRequest, reply: FastifyReply, spec: EventStreamSpec): void {
    this.longLived.assertRoomFor(request.ip);
    const label = `${spec.label} ← ${request.socket.remoteAddress}:${request.socket.remotePort}`;
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, { ...(reply.getHeaders() as Record<string, string>), ...SSE_HEADERS });
    response.flushHeaders();
    request.socket.setNoDelay(true);
    const connection = new SseConnection(response, {
      label,
      logger: this.logger,
      unnamedTwins: spec.unnamedTwins ?? false,
    });
    const toMessage = (n: Notification): SseMessage => ({
      id: n.id,
      event: n.name,
      data: spec.data ? JSON.stringify(spec.data(n) ?? null) : dataJson(n),
    });
    let unsubscribe = () => {};
    const deliver = (n: Notification) => {
      connection.send(toMessage(n), spec.coalesce ? `${n.thing}/${n.name}` : undefined);
      if (spec.endAfter?.(n)) {
        unsubscribe();
        connection.end();
      }
    };
    const unregister = this.longLived.register({
      kind: "sse",
      label,
      client: request.ip,
      end: () => connection.end(),
      destroy: () => connection.destroy(),
    });
    response.once("close", () => {
      unsubscribe();
      connection.release();
      unregister();
    });

    for (const message of spec.initial ?? []) connection.send(message);
    if (spec.endAfterInitial) {
      connection.end();
      return;
    }
    const lastEventId = Number(request.headers["last-event-id"]);
    if (Number.isInteger(lastEventId) && lastEventId >= 0) {
      for (const missed of this.hub.replaySince(lastEventId, spec.filter)) {
        deliver(missed);
        if (connection.ended) return;
      }
    }
    if (!connection.ended) unsubscribe = this.hub.subscribe(spec.filter, deliver);
  }
}
