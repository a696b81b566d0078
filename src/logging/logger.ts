import { type LevelWithSilent, type Logger, pino } from "pino";
import pretty from "pino-pretty";

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** `pretty` for people at a terminal, `json` for log collectors. Default: pretty on a TTY. */
  format?: "pretty" | "json";
  /** Where lines go; default standard output. */
  destination?: NodeJS.WritableStream;
}

const BRIEF = Symbol.for("labthings-ts.log.brief");
const DEBUG_FOR_PEOPLE = Symbol.for("labthings-ts.log.debugForPeople");

/**
 * Fields that a log collector wants but a person at a terminal does not: in `json`
 * output the line carries them, in `pretty` output only the message shows (or
 * `forPeople`, a message that says the fields in words), unless the level is debug.
 *
 * @example
 * ```ts
 * logger.info(brief({ url, things, startupMs }), `listening on ${url}/`);
 * ```
 */
export function brief<T extends object>(fields: T, forPeople?: string): T {
  return { ...fields, [BRIEF]: forPeople ?? true };
}

/**
 * A line a log collector wants (e.g. the moment shutdown began) but a person need not
 * read when all goes well: always in `json` output, in `pretty` output only at debug.
 */
export function debugForPeople<T extends object>(fields: T): T {
  return { ...fields, [DEBUG_FOR_PEOPLE]: true };
}

/** Level values at or below which people see every field (debug 20, trace 10). */
const DEBUG = 20;

/**
 * The server's logger. Pretty output is formatted synchronously in this process (not in
 * a worker thread) so nothing is lost when the process exits right after a line.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stdout;
  const format = options.format ?? ((destination as { isTTY?: boolean }).isTTY ? "pretty" : "json");
  const level = options.level ?? "info";
  if (format === "json") {
    const sink =
      destination === process.stdout ? pino.destination({ dest: 1, sync: true }) : destination;
    return pino({ level }, sink);
  }
  return pino(
    {
      level,
      hooks: {
        // Markers are symbols, so JSON output never shows them; here they thin the line.
        logMethod(args, method) {
          const [fields, ...rest] = args as unknown[];
          const marked = typeof fields === "object" && fields !== null ? fields : undefined;
          if (!marked || this.levelVal <= DEBUG) return method.apply(this, args);
          if ((marked as Record<symbol, unknown>)[DEBUG_FOR_PEOPLE]) return;
          const forPeople = (marked as Record<symbol, unknown>)[BRIEF];
          if (typeof forPeople === "string") return method.call(this, forPeople);
          if (forPeople) return method.apply(this, rest as Parameters<typeof method>);
          return method.apply(this, args);
        },
      },
    },
    pretty({
      destination,
      sync: true,
      colorize: (destination as { isTTY?: boolean }).isTTY ?? false,
      ignore: "pid,hostname",
      translateTime: "HH:MM:ss.l",
    }),
  );
}
