/**
 * Iterate an async iterable in the background, collecting what it yields: the test can
 * wait (bounded) until enough values have arrived, and then for the iteration to end.
 */
import { WAIT_MS } from "./within.js";

export interface BackgroundIteration<T> {
  /** Everything yielded so far. */
  readonly values: T[];
  /** Resolves when the iteration ends; rejects with what it threw. */
  readonly done: Promise<void>;
  /** Resolves once `count` values have arrived; bounded, and fails early if the iteration ends first. */
  waitFor(count: number, what: string, ms?: number): Promise<T[]>;
}

export function iterateInBackground<T>(iterable: AsyncIterable<T>): BackgroundIteration<T> {
  const values: T[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  const done = (async () => {
    try {
      for await (const value of iterable) {
        values.push(value);
        for (const wake of [...waiters]) wake();
      }
    } finally {
      ended = true;
      for (const wake of [...waiters]) wake();
    }
  })();
  done.catch(() => {}); // the test awaits `done` when it cares
  return {
    values,
    done,
    waitFor(count, what, ms = WAIT_MS) {
      return new Promise<T[]>((resolve, reject) => {
        const check = () => {
          if (values.length >= count) {
            finish();
            resolve(values);
          } else if (ended) {
            finish();
            done.then(
              () =>
                reject(
                  new Error(`the iteration ended after ${values.length} values, before ${what}`),
                ),
              reject,
            );
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `timed out after ${ms} ms waiting for ${what} (got ${values.length}: ${JSON.stringify(values).slice(0, 300)})`,
            ),
          );
        }, ms);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
