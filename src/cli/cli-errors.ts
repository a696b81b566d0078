/**
 * How the command line reports a failure: one line a newcomer can act on, the way out
 * where there is one, the stack only at `--log-level debug`. Exit status 2 for a mistake
 * in the arguments or the config, 1 for anything that went wrong while running.
 */
import { parseArgs } from "node:util";
import { closest } from "../config/config-problems.js";
import { ConfigError, LabThingsError, ListenError } from "../errors.js";

/** A mistake in the command line of `command` (printed with a pointer to its `--help`). */
export class ArgumentError extends Error {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

type ParseArgsConfig = NonNullable<Parameters<typeof parseArgs>[0]>;

/**
 * `parseArgs`, with its complaints said as a person would: "unknown argument '--prot'
 * (did you mean --port?)" rather than "Unknown option", and as ArgumentErrors.
 */
export function parseArguments<T extends ParseArgsConfig>(
  command: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const options = Object.entries(config.options ?? {});
    const names = options.map(([name]) => `--${name}`);
    const given = /'([^']+)'/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const near = given.startsWith("--") ? closest(given, names) : undefined;
      throw new ArgumentError(
        command,
        `unknown argument '${given}'${near ? ` (did you mean ${near}?)` : ""}`,
      );
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const flag = /--[\w-]+/.exec(message)?.[0] ?? given;
      const wantsValue = options.some(([name, o]) => `--${name}` === flag && o.type === "string");
      throw new ArgumentError(
        command,
        wantsValue ? `${flag} needs a value` : `${flag} is a switch: it takes no value`,
      );
    }
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      throw new ArgumentError(command, `unexpected argument '${given}'`);
    }
    throw new ArgumentError(command, message);
  }
}

export interface FailureOptions {
  /** Print stacks and causes (`--log-level debug` or `trace`). */
  debug?: boolean;
  /** Where to write; standard error by default. */
  write?: (text: string) => void;
}

/**
 * Print why the command failed and set `process.exitCode`. Known failures get one line
 * (plus a list for several config mistakes); the stack follows only when debugging.
 */
export function reportFailure(error: unknown, options: FailureOptions = {}): void {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const say = (text: string) => write(`labthings-ts: ${text}\n`);
  if (error instanceof ArgumentError) {
    write(`labthings-ts ${error.command}: ${error.message}\n`);
    write(`Run 'labthings-ts ${error.command} --help' to see its arguments.\n`);
    process.exitCode = 2;
    return;
  }
  if (error instanceof ConfigError) {
    reportConfigError(error, say, write);
    process.exitCode = 2;
    return;
  }
  process.exitCode = 1;
  if (error instanceof ListenError) {
    say(`${error.message}: ${listenAdvice(error)}`);
  } else if (error instanceof LabThingsError) {
    say(error.message);
  } else {
    say(error instanceof Error ? error.message : String(error));
    if (!options.debug) write("(run with --log-level debug to see where it came from)\n");
  }
  if (options.debug) {
    const cause = error instanceof Error ? (error.cause ?? error) : error;
    write(`${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`);
  }
}

function reportConfigError(
  error: ConfigError,
  say: (text: string) => void,
  write: (text: string) => void,
): void {
  const line = (p: (typeof error.problems)[number]) =>
    p.flag ? `${p.flag}: ${p.reason}` : p.key ? `${p.key}: ${p.reason}` : p.reason;
  const where = error.source ? `${error.source}: ` : "";
  if (error.problems.length === 1) {
    const [problem] = error.problems as [(typeof error.problems)[number]];
    // Not from a file's check (a token file that cannot be read, say): say it is config.
    const prefix = where || (problem.key ? "config " : "");
    say(problem.flag ? line(problem) : `${prefix}${line(problem)}`);
    return;
  }
  say(`${where || "the configuration: "}${error.problems.length} mistakes`);
  for (const problem of error.problems) write(`  ${line(problem)}\n`);
}

/** The way out of a failed listen: which flag or config key to change. */
function listenAdvice(error: ListenError): string {
  if (error.code === "EADDRINUSE") {
    const port = error.port === 65535 ? 5001 : error.port + 1;
    return `stop what runs there, or choose another port: ${throughNpm()}--port ${port} (or --port 0 for any free one; "port" in the config file)`;
  }
  if (error.code === "EACCES")
    return 'use a port above 1023 (--port, or "port" in the config file)';
  return 'use 127.0.0.1, or an address this machine has (--host, or "host" in the config file)';
}

/**
 * How a flag reaches us when an npm script ran us (`npm start`): after `--`, or npm takes
 * it for itself. npx passes flags through as they are.
 */
function throughNpm(): string {
  const script = process.env.npm_lifecycle_event;
  if (!script || script === "npx") return "";
  return `${script === "start" || script === "test" ? "npm" : "npm run"} ${script} -- `;
}
