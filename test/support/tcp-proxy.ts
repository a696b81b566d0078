/**
 * A tiny TCP proxy on 127.0.0.1 for connection-loss tests: it forwards bytes both ways,
 * can cut every open connection at once (as a dropped Wi-Fi link would), can hold new
 * connections unforwarded until released (so "while the client is disconnected" is a
 * state the test controls), and records what each client sent (its requests, to check
 * headers such as Last-Event-ID).
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { deferred, within } from "./within.js";

export class TcpProxy {
  readonly #server: Server;
  readonly #targetPort: number;
  readonly #pairs = new Set<[Socket, Socket | undefined]>();
  #holding = false;
  readonly #held: (() => void)[] = [];
  #heldListeners = new Set<() => void>();
  /** Everything each client connection sent (as latin1 text), in order of connection. */
  readonly sent: string[] = [];

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
  }

  /** Start a proxy to 127.0.0.1:`targetPort` on a free port. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on("connection", (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  /** `http://127.0.0.1:PORT` of the proxy. */
  get url(): string {
    const address = this.#server.address();
    if (typeof address !== "object" || address === null) throw new Error("proxy not listening");
    return `http://127.0.0.1:${address.port}`;
  }

  /** Connections accepted but not yet forwarded (while holding). */
  get heldCount(): number {
    return this.#held.length;
  }

  /** From now on, accept new connections but forward nothing until `release()`. */
  hold(): void {
    this.#holding = true;
  }

  /** Forward the held connections, and new ones from now on. */
  release(): void {
    this.#holding = false;
    for (const forward of this.#held.splice(0)) forward();
  }

  /** Resolves once at least `count` connections are held; bounded. */
  async waitForHeld(count = 1): Promise<void> {
    if (this.#held.length >= count) return;
    const { promise, resolve } = deferred();
    const check = () => {
      if (this.#held.length >= count) resolve();
    };
    this.#heldListeners.add(check);
    try {
      await within(promise, `${count} held connection(s) at the proxy`);
    } finally {
      this.#heldListeners.delete(check);
    }
  }

  /** Destroy every open connection, both sides, without a clean close. */
  cutAll(): void {
    for (const pair of this.#pairs) {
      pair[0].destroy();
      pair[1]?.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.#holding = false;
    this.#held.length = 0;
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const pair: [Socket, Socket | undefined] = [client, undefined];
    this.#pairs.add(pair);
    const index = this.sent.length;
    this.sent.push("");
    const early: Buffer[] = [];
    const record = (chunk: Buffer) => {
      this.sent[index] += chunk.toString("latin1");
    };
    const buffer = (chunk: Buffer) => early.push(chunk);
    client.on("data", record);
    client.on("data", buffer);
    client.on("error", () => {});
    client.on("close", () => {
      pair[1]?.destroy();
      this.#pairs.delete(pair);
    });
    const forward = () => {
      if (client.destroyed) return;
      const upstream = createConnection({ host: "127.0.0.1", port: this.#targetPort });
      pair[1] = upstream;
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => client.destroy());
      client.off("data", buffer);
      for (const chunk of early) upstream.write(chunk);
      client.pipe(upstream);
      upstream.pipe(client);
    };
    if (this.#holding) {
      this.#held.push(forward);
      for (const listener of this.#heldListeners) listener();
    } else {
      forward();
    }
  }
}
