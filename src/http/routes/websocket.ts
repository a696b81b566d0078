/**
 * `WS /{thing}/ws`: labthings-fastapi's websocket messages (its websockets.py), so pages
 * written for the Python server work. Client → server: `{ messageType:
 * "addPropertyObservation" | "addActionObservation", data: { <name>: true, … } }`.
 * Server → client: `{ messageType: "propertyStatus", data: { <name>: value } }` on every
 * assignment of the property (also of its current value, as upstream's `__set__`
 * publishes), `{ messageType: "actionStatus", data: { "action name", status, … } }` on
 * each status change of an invocation (upstream's status words: a failure is `"error"`;
 * the rest of our ActionStatus rides along), and for a bad request
 * `{ messageType: "response", operation, name, error: { status, type, title, detail } }`
 * with upstream's Web Thing Protocol error types.
 */
import { type IncomingMessage, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
// For the `wsHandler` route option's types.
import type {} from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import { InvalidInputError } from "../../errors.js";
import type { ThingLogger } from "../../model/logger.js";
import {
  problemType,
  WEB_THING_NOT_FOUND_TYPE,
  WEB_THING_NOT_OBSERVABLE_TYPE,
} from "../../problem-types.js";
import type { ExposedThing } from "../../runtime/exposed-thing.js";
import type { Invocation, InvocationStatus } from "../../runtime/invocation.js";
import type { InvocationManager } from "../../runtime/invocation-manager.js";
import type { Notification, ObservationHub } from "../../runtime/observation-hub.js";
import type { LongLivedRegistry } from "../long-lived-registry.js";
import { writeProblemToSocket } from "../problem-details.js";
import type { RouteContext } from "../route-context.js";
import { invocationPath } from "./actions.js";

/** Above this many bytes waiting in the socket, property updates are coalesced. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** Most non-coalescable messages held for a slow client before it is dropped. */
const MAX_HELD = 256;
/** After a close frame, how long the peer gets to answer before the socket is cut. */
export const WEBSOCKET_CLOSE_TIMEOUT_MS = 500;
/**
 * A ping this often (as the SSE heartbeat); a peer that has not answered the previous one
 * is gone (a laptop asleep, a cable pulled) and is cut, freeing its place. Pings also keep
 * an idle websocket open through proxies (uvicorn, under labthings-fastapi, pings too).
 */
export const WEBSOCKET_PING_MS = 15_000;

export interface WebSocketRouteContext extends RouteContext {
  readonly hub: ObservationHub;
  /** To find the running invocations an observer still awaits a final status of at shutdown. */
  readonly invocations: InvocationManager;
  readonly longLived: LongLivedRegistry;
  readonly logger: ThingLogger;
}

/**
 * Refuse websocket handshakes that are not for a `/{thing}/ws` endpoint, or that `ws`
 * finds malformed, with Problem Details (by default `ws` answers text/html, and
 * @fastify/websocket would complete a handshake on any route and then hang up).
 */
export function refuseStrayHandshakes(app: FastifyInstance): void {
  app.addHook("preHandler", (request, _reply, done) => {
    const config = request.routeOptions.config as { websocketEndpoint?: boolean } | undefined;
    if (!request.ws || config?.websocketEndpoint) return done();
    done(
      new InvalidInputError(
        `${request.url.split("?", 1)[0]} is not a websocket endpoint: a Thing's websocket is at /{thing}/ws`,
      ),
    );
  });
  app.websocketServer.on(
    "wsClientError",
    (error: Error, socket: Socket, request: IncomingMessage) => {
      const status = error.message === "Invalid HTTP method" ? 405 : 400;
      const headers: Record<string, string> =
        status === 405
          ? { allow: "GET" }
          : error.message.includes("Version")
            ? { "sec-websocket-version": "13, 8" }
            : {};
      writeProblemToSocket(
        socket,
        {
          type: problemType("websocket-handshake"),
          title: STATUS_CODES[status]!,
          status,
          detail: `websocket handshake refused: ${error.message}`,
          instance: (request.url ?? "").split("?", 1)[0],
        },
        { headers, head: request.method === "HEAD" },
      );
    },
  );
}

/**
 * Whether Node handed the request's socket to its 'upgrade' event (it sets `upgrade`, which
 * @types/node does not declare). Such a socket is no longer parsed as HTTP: answered over
 * HTTP instead of upgraded, only the server can close it.
 */
export function isUpgradeRequest(request: IncomingMessage): boolean {
  return (request as IncomingMessage & { upgrade?: boolean }).upgrade === true;
}

export function registerWebSocketRoutes(
  app: FastifyInstance,
  context: WebSocketRouteContext,
): void {
  for (const exposed of context.registry.values()) {
    app.route({
      method: "GET",
      url: `/${exposed.name}/ws`,
      schema: { hide: true },
      config: { websocketEndpoint: true },
      // Before the upgrade, so a refusal is an ordinary 429 Problem Details answer.
      preValidation: async (request) => context.longLived.assertRoomFor(request.ip),
      handler: async (_request, reply) =>
        reply
          .code(426)
          .header("upgrade", "websocket")
          .type("application/problem+json")
          .send(
            JSON.stringify({
              type: "about:blank",
              title: "Upgrade Required",
              status: 426,
              detail: `'${exposed.name}/ws' is a websocket: connect with a websocket client`,
              instance: `/${exposed.name}/ws`,
            }),
          ),
      wsHandler: (socket, request) => {
        const label = `${exposed.name}/ws ← ${request.socket.remoteAddress}:${request.socket.remotePort}`;
        new ThingWebSocket(socket, exposed, context, label, request.ip);
      },
    });
  }
}

/** labthings-fastapi's `InvocationStatus` values: the same words, but `error` for `failed`. */
const UPSTREAM_STATUS: Record<InvocationStatus, string> = {
  pending: "pending",
  running: "running",
  completed: "completed",
  failed: "error",
  cancelled: "cancelled",
};

class ThingWebSocket {
  readonly #properties = new Set<string>();
  readonly #actions = new Set<string>();
  /** The status last sent per invocation: upstream sends one message per status change. */
  readonly #sentStatus = new WeakMap<Invocation, InvocationStatus>();
  /** Messages waiting while the socket is congested; property updates keyed by name. */
  readonly #held = new Map<string, string>();
  #heldSerial = 0;
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly exposed: ExposedThing,
    private readonly context: WebSocketRouteContext,
    private readonly label: string,
    client: string,
  ) {
    const unsubscribe = context.hub.subscribe(
      (n) => n.thing === exposed.name && this.#wants(n),
      (n) => this.#notify(n),
      { reassignments: true },
    );
    let closeTimer: NodeJS.Timeout | undefined;
    const watched = this.#actions;
    // First read when shutdown begins (then kept, as shutdown reads it twice): a page
    // observing an action still gets its final actionStatus (cancelled) before the close.
    let final: Promise<unknown> | undefined | null = null;
    const unregister = context.longLived.register({
      kind: "websocket",
      label,
      client,
      get finalMessage() {
        if (final === null) {
          const awaited = context.invocations
            .list({ thing: exposed.name })
            .filter((invocation) => !invocation.finished && watched.has(invocation.action))
            .map((invocation) => invocation.settled);
          final = awaited.length > 0 ? Promise.all(awaited) : undefined;
        }
        return final;
      },
      end: () => {
        socket.close(1001, "server shutting down");
        // ws waits 30 s for the peer's close frame by default: far too long for a shutdown.
        closeTimer = setTimeout(() => socket.terminate(), WEBSOCKET_CLOSE_TIMEOUT_MS);
        closeTimer.unref();
      },
      destroy: () => socket.terminate(),
    });
    let answered = true;
    socket.on("pong", () => {
      answered = true;
    });
    const heartbeat = setInterval(() => {
      if (!answered) {
        context.logger.info({ client: label }, "websocket client stopped answering pings: cut");
        socket.terminate();
        return;
      }
      answered = false;
      socket.ping();
    }, WEBSOCKET_PING_MS);
    heartbeat.unref();
    socket.on("message", (data) => {
      // A throw in a socket listener is an uncaught exception: it would shut the server down.
      try {
        this.#receive(String(data));
      } catch (error) {
        context.logger.error({ err: error, client: label }, "websocket message handling failed");
        socket.close(1011, "internal error");
      }
    });
    socket.on("close", () => {
      clearInterval(heartbeat);
      clearTimeout(closeTimer);
      clearInterval(this.#flushTimer);
      this.#held.clear();
      unsubscribe();
      unregister();
    });
    socket.on("error", () => socket.terminate());
  }

  #wants(n: Notification): boolean {
    if (n.kind === "property") return this.#properties.has(n.name);
    if (n.kind === "action") return this.#actions.has(n.name);
    return false;
  }

  #notify(n: Notification): void {
    if (n.kind === "property") {
      this.#send(
        JSON.stringify({ messageType: "propertyStatus", data: { [n.name]: n.data } }),
        `property:${n.name}`,
      );
    } else if (n.invocation) {
      // Progress and log updates are not status changes: upstream pages count on one
      // message per status (pending, running, then the final one).
      const invocation = n.invocation;
      if (this.#sentStatus.get(invocation) === invocation.status) return;
      this.#sentStatus.set(invocation, invocation.status);
      const status = invocation.toStatus(invocationPath(this.context.prefix, invocation.id));
      this.#send(
        JSON.stringify({
          messageType: "actionStatus",
          data: { "action name": n.name, ...status, status: UPSTREAM_STATUS[status.status] },
        }),
      );
    }
  }

  #receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      message = undefined;
    }
    // `null`, `[]`, `5`: a throw here would reach the process as an uncaught exception.
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      this.#error(
        "unknown",
        "",
        400,
        problemType("bad-request"),
        "Bad Request",
        "the message is not a JSON object",
      );
      return;
    }
    const { messageType, data } = message as { messageType?: unknown; data?: unknown };
    const names = data && typeof data === "object" ? Object.keys(data) : [];
    const observing =
      messageType === "addPropertyObservation" || messageType === "addActionObservation";
    // Upstream subscribes every key of `data`: a list or a bare name would be read as
    // "0" or as nothing, and the page would wait for messages that never come.
    if (observing && (typeof data !== "object" || data === null || Array.isArray(data))) {
      this.#error(
        messageType === "addPropertyObservation" ? "observeproperty" : "observeaction",
        "",
        400,
        problemType("bad-request"),
        "Bad Request",
        `'data' must be an object whose keys are the names to observe, e.g. {"messageType": "${messageType}", "data": {"position": true}}`,
      );
      return;
    }
    if (messageType === "addPropertyObservation") {
      for (const name of names) {
        const property = this.exposed.properties.get(name);
        if (!property) {
          this.#error(
            "observeproperty",
            name,
            404,
            WEB_THING_NOT_FOUND_TYPE,
            "Not Found",
            `No property found with the name '${name}'.`,
          );
        } else if (!property.declaration.observable || !property.readable) {
          this.#error(
            "observeproperty",
            name,
            403,
            WEB_THING_NOT_OBSERVABLE_TYPE,
            "Not Observable",
            `Property '${name}' is not observable.`,
          );
        } else {
          this.#properties.add(name);
        }
      }
    } else if (messageType === "addActionObservation") {
      for (const name of names) {
        if (this.exposed.actions.has(name)) this.#actions.add(name);
        else
          this.#error(
            "observeaction",
            name,
            404,
            WEB_THING_NOT_FOUND_TYPE,
            "Not Found",
            `No action found with the name '${name}'.`,
          );
      }
    } else {
      // Only a string is echoed (`String()` of `{"toString": 1}` would throw), and briefly.
      const shown = typeof messageType === "string" ? messageType.slice(0, 100) : "unknown";
      this.#error(
        shown,
        "",
        400,
        problemType("bad-request"),
        "Bad Request",
        typeof messageType === "string"
          ? `unknown messageType '${shown}'`
          : "the message has no messageType string",
      );
    }
  }

  #error(
    operation: string,
    name: string,
    status: number,
    type: string,
    title: string,
    detail: string,
  ): void {
    this.#send(
      JSON.stringify({
        messageType: "response",
        operation,
        name,
        error: { status: String(status), type, title, detail },
      }),
    );
  }

  /** Send now, or hold while congested: the latest per key, others up to a bound. */
  #send(json: string, key?: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.#held.size === 0 && this.socket.bufferedAmount < HIGH_WATER_BYTES) {
      this.socket.send(json);
      return;
    }
    this.#held.set(key ?? `message:${this.#heldSerial++}`, json);
    if (this.#held.size > MAX_HELD) {
      this.context.logger.warn(
        { client: this.label },
        "dropping websocket client that does not keep up",
      );
      this.socket.terminate();
      return;
    }
    this.#flushTimer ??= setInterval(() => this.#flush(), 50);
  }

  #flush(): void {
    for (const [key, json] of this.#held) {
      if (this.socket.bufferedAmount >= HIGH_WATER_BYTES) return;
      this.#held.delete(key);
      this.socket.send(json);
    }
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
  }
}
