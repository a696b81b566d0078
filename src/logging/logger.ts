import { type LevelWithSilent, type Logger, pino } from "pino";
import pretty from "pino-pretty";

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** `pretty` for people at a terminal, `json` for log collectors. Default: pretty on a TTY. */
  format?: "pretty" | "json";
  /** Where lines go; default standard output. */
  destination?: NodeJS.WritableStream;
}

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
    { level },
    pretty({
      destination,
      sync: true,
      colorize: (destination as { isTTY?: boolean }).isTTY ?? false,
      ignore: "pid,hostname",
      translateTime: "HH:MM:ss.l",
    }),
  );
}
