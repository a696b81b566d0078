/**
 * Iterate an async iterable in the background, collecting what it yields: the test can
 * wait (bounded) until enough values have arrived, and then for the iteration to end.
 */
import { deferred, WAIT_MS, within } from "./within.js";

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

/**
 * Start iterating a stream in the background, then wait (bounded) until it is open: `start`
 * passes the `onOpen` it gets to the client, so no change is made before the server has
 * the subscriber.
 *
 * @example
 * ```ts
 * const observed = await iterateOnceOpen((onOpen) =>
 *   client.observeProperty<number>("counter", { signal, onOpen }),
 * );
 * thing.counter = 1;
 * expect(await observed.waitFor(1, "a change")).toEqual([1]);
 * ```
 */
export async function iterateOnceOpen<T>(
  start: (onOpen: () => void) => AsyncIterable<T>,
): Promise<BackgroundIteration<T>> {
  const opened = deferred();
  const iteration = iterateInBackground(start(() => opened.resolve()));
  await within(opened.promise, "the event stream to open");
  return iteration;
}
