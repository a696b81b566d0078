/** Upper bound for one wait on the network, a child process or the server. */
export const WAIT_MS = 20_000;

/**
 * Reject when `promise` has not settled within `ms`, naming what was awaited: every wait
 * in the tests is bounded, and a hang fails with a message instead of a test time-out.
 */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise with its resolve function (Promise.withResolvers needs Node 22). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Wait until `test()` holds, checking every `everyMs`; bounded like `within`. For state
 * that changes without an event to wait on (messages collected by another client).
 */
export async function until(test: () => boolean, what: string, everyMs = 10): Promise<void> {
  await within(
    (async () => {
      while (!test()) await new Promise((resolve) => setTimeout(resolve, everyMs));
    })(),
    what,
  );
}
