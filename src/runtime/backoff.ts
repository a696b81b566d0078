/**
 * Exponential backoff with jitter for reconnecting to something that may be down (a TD
 * directory, an MQTT broker): 1 s, 2 s, 4 s … up to a ceiling, each ±20 % so a lab full
 * of instruments that lost the same broker does not come back in lockstep.
 */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly firstMs = 1000,
    private readonly maxMs = 60_000,
  ) {}

  /** The pause before the next attempt (and count this one). */
  next(): number {
    const base = Math.min(this.maxMs, this.firstMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** After a success: the next failure starts from the first pause again. */
  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
