/**
 * The server owns every long-lived response. MJPEG streams (and SSE, websockets, long
 * polls) register here when they open and leave when their socket closes; shutdown
 * ends them all itself, first, before it waits for anything. This is what keeps an
 * open viewer from holding the server up (the Python server's bug).
 */
import { TooManyRequestsError } from "../errors.js";

/** A response that does not end by itself. */
export interface LongLivedResponse {
  /** `mjpeg`, `sse`, `websocket`, … */
  readonly kind: string;
  /** Names it in logs, e.g. `camera/stream ← 127.0.0.1:53122`. */
  readonly label: string;
  /** The client's address, counted against the per-address cap. */
  readonly client?: string;
  /**
   * At shutdown, end it only once this settles: its last message is still to come (an
   * invocation's final status, sent when the aborted action has stopped).
   */
  readonly finalMessage?: Promise<unknown>;
  /** End it cleanly for the client: closing delimiter, end of event stream, close frame 1001. */
  end(): void;
  /** Cut the connection (the clean end did not finish in time). */
  destroy(): void;
}

export interface EndAllReport {
  /** How many were open when shutdown began. */
  ended: number;
  /** Labels of those that had not closed within the grace time and were destroyed. */
  destroyed: string[];
}

export class LongLivedRegistry {
  readonly #open = new Set<LongLivedResponse>();
  readonly #perClient = new Map<string, number>();
  /** Told whenever a response leaves (for endAll's wait). */
  readonly #closeWatchers = new Set<(response: LongLivedResponse) => void>();

  /** @param maxPerClient open responses one client address may hold; 0 for no cap. */
  constructor(readonly maxPerClient = 0) {}

  /**
   * Throw a 429 when `client` already holds its share. Call it before opening a response
   * (before the reply is hijacked), so the refusal is an ordinary Problem Details answer.
   */
  assertRoomFor(client: string | undefined): void {
    if (!this.maxPerClient || client === undefined) return;
    const open = this.#perClient.get(client) ?? 0;
    if (open >= this.maxPerClient) {
      throw new TooManyRequestsError(
        `${client} already has ${open} streams, event streams or websockets open, the most one address may hold; close one first`,
      );
    }
  }

  /**
   * Register a response that has just opened. Call the returned function when its
   * socket closes, whoever closed it.
   */
  register(response: LongLivedResponse): () => void {
    this.#open.add(response);
    const { client } = response;
    if (client !== undefined) this.#perClient.set(client, (this.#perClient.get(client) ?? 0) + 1);
    let registered = true;
    return () => {
      if (!registered) return;
      registered = false;
      this.#open.delete(response);
      if (client !== undefined) {
        const left = (this.#perClient.get(client) ?? 1) - 1;
        if (left > 0) this.#perClient.set(client, left);
        else this.#perClient.delete(client);
      }
      for (const watcher of [...this.#closeWatchers]) watcher(response);
    };
  }

  get size(): number {
    return this.#open.size;
  }

  /** Open responses by kind, e.g. `{ mjpeg: 3, sse: 1 }`. */
  countByKind(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { kind } of this.#open) counts[kind] = (counts[kind] ?? 0) + 1;
    return counts;
  }

  /**
   * End every open response (or those `which` picks), wait until their sockets have
   * closed, but no longer than `graceMs`; then destroy what is left of them and report it
   * by name.
   */
  async endAll(
    graceMs: number,
    which: (response: LongLivedResponse) => boolean = () => true,
  ): Promise<EndAllReport> {
    const chosen = new Set([...this.#open].filter(which));
    const waiting = new Set(chosen);
    let timer: NodeJS.Timeout | undefined;
    let watcher: ((response: LongLivedResponse) => void) | undefined;
    const allClosed = new Promise<void>((resolve) => {
      watcher = (response) => {
        if (waiting.delete(response) && waiting.size === 0) resolve();
      };
      this.#closeWatchers.add(watcher);
    });
    for (const response of chosen) {
      try {
        response.end();
      } catch {
        response.destroy();
      }
    }
    if (waiting.size > 0) {
      await Promise.race([
        allClosed,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#closeWatchers.delete(watcher!);
    const left = [...waiting];
    for (const response of left) response.destroy();
    return { ended: chosen.size, destroyed: left.map((response) => response.label) };
  }

  /** Destroy everything at once (the hard deadline). Returns the labels. */
  destroyAll(): string[] {
    const labels = [...this.#open].map((response) => response.label);
    for (const response of [...this.#open]) response.destroy();
    return labels;
  }
}
