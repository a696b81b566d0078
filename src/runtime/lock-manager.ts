import { LockBusyError } from "../errors.js";

interface Waiter {
  grant: (release: () => void) => void;
  fail: (error: unknown) => void;
}

/**
 * Named exclusive locks for actions and property writes (e.g. `"stage"`), so two moves
 * never run at once. Waiters are served first come, first served.
 */
export class LockManager {
  readonly #holders = new Map<string, string>();
  readonly #waiters = new Map<string, Waiter[]>();

  /** Who holds `name` (a description such as `stage.moveAbsolute`), if anyone. */
  holder(name: string): string | undefined {
    return this.#holders.get(name);
  }

  /**
   * Take the lock, waiting at most `waitMs` (0: fail at once; undefined: no limit).
   * Rejects with LockBusyError on time-out, or with the signal's reason on abort.
   * Resolves with the function that releases it.
   */
  acquire(
    name: string,
    holder: string,
    options: { waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<() => void> {
    const { waitMs, signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.#holders.has(name)) return Promise.resolve(this.#grant(name, holder));
    const current = this.#holders.get(name);
    if (waitMs === 0) return Promise.reject(busy(name, current));
    return new Promise((resolve, reject) => {
      const queue = this.#waiters.get(name) ?? [];
      this.#waiters.set(name, queue);
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const index = queue.indexOf(waiter);
        if (index >= 0) queue.splice(index, 1);
      };
      const onAbort = () => {
        leave();
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          leave();
          resolve(release);
        },
        fail: reject,
      };
      queue.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (waitMs !== undefined) {
        timer = setTimeout(() => {
          leave();
          reject(busy(name, this.#holders.get(name), waitMs));
        }, waitMs);
      }
    }).then((release) => {
      this.#holders.set(name, holder);
      return release as () => void;
    });
  }

  #grant(name: string, holder: string): () => void {
    this.#holders.set(name, holder);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holders.delete(name);
      const next = this.#waiters.get(name)?.shift();
      if (next) {
        // Hand over directly so nobody can slip in between.
        this.#holders.set(name, "(handing over)");
        next.grant(this.#grant(name, "(handing over)"));
      }
    };
  }
}

function busy(name: string, holder: string | undefined, waitedMs?: number): LockBusyError {
  const waited = waitedMs === undefined ? "" : ` after waiting ${waitedMs} ms`;
  return new LockBusyError(`lock '${name}' is held by ${holder ?? "another operation"}${waited}`);
}
