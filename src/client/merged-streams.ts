/**
 * Merging several async iterations into one, in order of arrival: how ThingClient follows
 * every property (or event) of a Thing whose TD has no Thing-wide form, one stream per
 * affordance. The sources share one AbortSignal, so ending the merged iteration (the
 * consumer stops, the caller's signal aborts, or one source fails) ends all of them.
 * Browser-safe.
 */

/**
 * Start the sources with a shared signal and yield every value of each, as it arrives;
 * ends when every source has ended. A source that throws ends the others, and the error
 * is rethrown. Each source is read at most one value ahead of the consumer, so a slow
 * consumer holds back the sources rather than growing a queue.
 *
 * @example
 * ```ts
 * const both = mergeStreams(
 *   (signal) => [client.observeProperty("x", { signal }), client.observeProperty("y", { signal })],
 *   { signal: controller.signal },
 * );
 * for await (const value of both) console.log(value);
 * ```
 */
export async function* mergeStreams<T>(
  start: (signal: AbortSignal) => AsyncIterable<T>[],
  options: { signal?: AbortSignal | undefined } = {},
): AsyncGenerator<T, void, undefined> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const iterators = start(controller.signal).map((source) => source[Symbol.asyncIterator]());
  type Settled = { index: number; result: IteratorResult<T, unknown> };
  const pending = new Map<number, Promise<Settled>>();
  const pull = (index: number) => {
    const next = iterators[index]!.next().then((result) => ({ index, result }));
    // The race below sees a rejection; the ones still pending when it ends are not unhandled.
    next.catch(() => {});
    pending.set(index, next);
  };
  try {
    for (let index = 0; index < iterators.length; index++) pull(index);
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    // Abort first: a source's return() waits for its pending next(), which the abort ends.
    controller.abort();
    await Promise.allSettled(iterators.map((iterator) => iterator.return?.()));
  }
}
