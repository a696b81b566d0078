/**
 * A pino logger whose JSON lines the test keeps: what an operator would read in the
 * server log, with a bounded wait for a line that matches.
 *
 * @example
 * ```ts
 * const logs = new LogCapture("error");
 * const server = new ThingServer(entries, { port: 0, logger: logs.logger });
 * await logs.waitFor((line) => line.msg === "request failed", "the failure in the log");
 * ```
 */
import { type Level, type Logger, pino } from "pino";
import { deferred, within } from "./within.js";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly #waiters: { test: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  readonly logger: Logger;

  constructor(level: Level = "warn") {
    this.logger = pino(
      { level },
      {
        write: (text: string) => {
          const line = JSON.parse(text) as LogLine;
          this.lines.push(line);
          for (const waiter of [...this.#waiters]) {
            if (waiter.test(line)) {
              this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
              waiter.resolve(line);
            }
          }
        },
      },
    );
  }

  /** The first line (logged so far or to come) that passes `test`; bounded. */
  waitFor(test: (line: LogLine) => boolean, what: string): Promise<LogLine> {
    const found = this.lines.find(test);
    if (found) return Promise.resolve(found);
    const { promise, resolve } = deferred<LogLine>();
    this.#waiters.push({ test, resolve });
    return within(promise, what);
  }
}
