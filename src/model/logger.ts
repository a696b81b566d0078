/**
 * The logging surface a Thing sees. pino's Logger satisfies it; the model layer does
 * not depend on pino so Things stay testable with any logger, or none.
 */
export interface LogFn {
  (message: string): void;
  (fields: object, message?: string): void;
}

export interface ThingLogger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  child(bindings: Record<string, unknown>): ThingLogger;
}

const ignore: LogFn = () => {};

/** A logger that drops everything: the default for a Thing used outside a server. */
export const silentLogger: ThingLogger = {
  error: ignore,
  warn: ignore,
  info: ignore,
  debug: ignore,
  child: () => silentLogger,
};
