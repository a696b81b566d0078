/**
 * A node:http server that answers each event-stream request with the next scripted
 * answer (raw SSE text then end, or a bare status), and records each request's headers:
 * for checking the SSE parser and reconnect rules against exact bytes on a real socket.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export type ScriptedAnswer = { events: string } | { status: number };

export class ScriptedSseServer {
  readonly #server: Server;
  readonly #script: ScriptedAnswer[];
  /** Headers of every request, in order. */
  readonly requests: IncomingHttpHeaders[] = [];
  /** performance.now() at each request. */
  readonly requestTimes: number[] = [];

  private constructor(script: ScriptedAnswer[]) {
    this.#script = [...script];
    this.#server = createServer((request, response) => {
      this.requests.push(request.headers);
      this.requestTimes.push(performance.now());
      const answer = this.#script.shift() ?? { status: 204 };
      if ("status" in answer) {
        response.writeHead(answer.status).end();
        return;
      }
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
      response.end(answer.events);
    });
  }

  static async start(script: ScriptedAnswer[]): Promise<ScriptedSseServer> {
    const server = new ScriptedSseServer(script);
    await new Promise<void>((resolve) => server.#server.listen(0, "127.0.0.1", resolve));
    return server;
  }

  get url(): string {
    const address = this.#server.address();
    if (typeof address !== "object" || address === null) throw new Error("not listening");
    return `http://127.0.0.1:${address.port}`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
