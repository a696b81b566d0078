/**
 * A pause that an AbortSignal ends early: for reconnect back-off and status polling,
 * which must stop at once when the caller aborts. Browser-safe.
 */

/**
 * Wait `ms`; resolves `true` when the time is up, `false` (at once) when `signal` aborts.
 *
 * @example
 * ```ts
 * if (!(await abortableSleep(500, signal))) return; // aborted: stop retrying
 * ```
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
