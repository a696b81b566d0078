/**
 * The server's open connections and the requests in progress on them, for shutdown:
 * connections with no request in progress are closed at once (Node keeps spares that
 * browsers and fetch open, and under TLS sockets still in their handshake, none of
 * which any request would miss), and a request still receiving its body gets a short
 * grace, then a 503 and the end of its connection: a client that trickles a body must
 * not hold shutdown for the whole deadline.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { problemType } from "./problem-details.js";

/** How often shutdown looks whether the slow bodies have arrived. */
const BODY_POLL_MS = 10;

export class ConnectionTracker {
  /** Open TCP sockets and how many of their requests are in progress. */
  readonly #sockets = new Map<Socket, number>();
  /** Requests whose response has not closed yet. */
  readonly #requests = new Map<IncomingMessage, ServerResponse>();

  attach(server: Server): void {
    // TCP sockets, also under TLS: one still in its handshake has no request yet.
    server.on("connection", (socket: Socket) => {
      this.#sockets.set(socket, 0);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    // An upgraded socket (websocket) is long-lived: the registry ends it, not this sweep.
    server.on("upgrade", (request: IncomingMessage) => {
      this.#sockets.set(tcpSocketOf(request), Number.POSITIVE_INFINITY);
    });
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      const socket = tcpSocketOf(request);
      this.#sockets.set(socket, (this.#sockets.get(socket) ?? 0) + 1);
      this.#requests.set(request, response);
      response.once("close", () => {
        this.#requests.delete(request);
        const active = this.#sockets.get(socket);
        if (active !== undefined) this.#sockets.set(socket, active - 1);
      });
    });
  }

  /** Close every connection with no request in progress. */
  destroyIdle(): void {
    for (const [socket, active] of this.#sockets) if (active === 0) socket.destroy();
  }

  /**
   * Give requests still receiving their body `graceMs` to finish it; then answer each
   * that has not 503 Problem Details and close its connection. Returns their labels
   * (`PUT /camera/exposureTime ← 127.0.0.1:5123`).
   */
  async cutIncompleteBodies(graceMs: number): Promise<string[]> {
    const receiving = () => [...this.#requests].filter(([request]) => !request.complete);
    const deadline = performance.now() + graceMs;
    while (receiving().length > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, BODY_POLL_MS));
    }
    const cut = receiving();
    for (const [request, response] of cut) cutRequest(request, response, graceMs);
    return cut.map(
      ([request]) =>
        `${request.method} ${(request.url ?? "").split("?", 1)[0]} ← ${request.socket.remoteAddress}:${request.socket.remotePort}`,
    );
  }
}

function cutRequest(request: IncomingMessage, response: ServerResponse, graceMs: number): void {
  const socket = request.socket;
  if (response.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    type: problemType("unavailable"),
    title: "Service Unavailable",
    status: 503,
    detail: `the server is shutting down and the request body had not arrived within ${graceMs} ms`,
    instance: (request.url ?? "").split("?", 1)[0],
  });
  response.writeHead(503, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  // The rest of the body will never be read: close once the answer is on its way.
  response.end(body, () => socket.destroy());
}

/**
 * The TCP socket under a request: under TLS `request.socket` is the TLSSocket wrapping it
 * (Node keeps the wrapped socket as `_parent`, stable since Node 0.x but undocumented).
 */
function tcpSocketOf(request: IncomingMessage): Socket {
  return (request.socket as Socket & { _parent?: Socket })._parent ?? request.socket;
}
