/**
 * `labthings-ts call <thing URL> <affordance> [json]`: one interaction with any Thing,
 * through `ThingClient` (so it follows the TD's forms and works with any Profile server).
 * A property is read (no json) or written (json); an action is invoked with json as its
 * input, its progress and log drawn on stderr until it ends, and its output printed on
 * stdout (or saved with `-o`); an event's emissions are printed as JSON lines. Ctrl-C
 * cancels a running invocation on the server, waits for it to settle and exits 130.
 */
import { writeFile } from "node:fs/promises";
import {
  AffordanceNotFoundError,
  HttpError,
  InvocationCancelledError,
  InvocationFailedError,
  type ProblemDetails,
  ThingClientError,
} from "../client/client-errors.js";
import { type BlobReference, ThingClient } from "../client/thing-client.js";
import type { ActionAffordance } from "../client/thing-description.js";
import { ArgumentError, parseArguments, reportFailure } from "./cli-errors.js";
import { ProgressDisplay } from "./progress-display.js";

export const CALL_USAGE = `Usage: labthings-ts call <thing URL> <affordance> [json] [options]

Read a property (no json) or write it (json), invoke an action (json: its input), or
print an event's emissions as JSON lines until Ctrl-C. <thing URL> is the Thing
Description's URL, e.g. http://127.0.0.1:5000/stage/.

While an action runs its progress and log go to stderr; Ctrl-C cancels it on the server.

Options:
  -o, --output FILE   save the action's output in FILE (a blob's bytes, else its JSON)
      --token TOKEN   bearer token for the server (default: $LABTHINGS_TOKEN)
  -h, --help          show this help

Exit status: 0 done, 1 refused or failed (the server's Problem Details on stderr),
2 bad arguments, 130 interrupted (Ctrl-C).

Examples:
  labthings-ts call http://127.0.0.1:5000/stage/ position
  labthings-ts call http://127.0.0.1:5000/stage/ speed 5000
  labthings-ts call http://127.0.0.1:5000/stage/ moveRelative '{"x": 1000}'
  labthings-ts call http://127.0.0.1:5000/autofocus/ run '{}'
  labthings-ts call http://127.0.0.1:5000/camera/ capture -o still.jpg`;

/** Exit status of a Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130;

/** A mistake in the command line: named with a pointer to `--help`, exit status 2. */
class UsageError extends ArgumentError {
  constructor(message: string) {
    super("call", message);
  }
}

interface CallArguments {
  thingUrl: string;
  affordance: string;
  /** The parsed json argument; `undefined` when none was given. */
  value: unknown;
  hasValue: boolean;
  output: string | undefined;
  token: string | undefined;
}

function parseCallArguments(args: string[]): CallArguments | "help" {
  const parsed = parseFlags(args);
  if (parsed.values.help) return "help";
  const [thingUrl, affordance, json, ...extra] = parsed.positionals;
  if (thingUrl === undefined || affordance === undefined) {
    throw new UsageError("give the Thing's URL and the name of a property, action or event");
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' (quote the JSON)`);
  try {
    new URL(thingUrl);
  } catch {
    throw new UsageError(`'${thingUrl}' is not a URL`);
  }
  let value: unknown;
  if (json !== undefined) {
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new UsageError(notJson(json, error as Error));
    }
  }
  return {
    thingUrl,
    affordance,
    value,
    hasValue: json !== undefined,
    output: parsed.values.output,
    token: parsed.values.token ?? (process.env.LABTHINGS_TOKEN || undefined),
  };
}

/**
 * Why `json` is not JSON, and the quoting that fixes it. Most often the shell ate the
 * quotes: `"fast"` arrives as `fast`, and `{"x": 1000}` unquoted as `{x: 1000}`.
 */
function notJson(json: string, error: Error): string {
  if (!/^\s*[[{]/.test(json)) {
    return `'${json}' is not JSON. A text value needs JSON quotes inside the shell's: '${JSON.stringify(json)}'`;
  }
  const why = `'${json}' is not JSON (${error.message})`;
  // Bare member names, as the shell leaves `{"x": 1000}` written without single quotes.
  const quoted = json.replace(/([{,]\s*)([A-Za-z_$][\w$]*)(\s*:)/g, '$1"$2"$3');
  try {
    JSON.parse(quoted);
    return `${why}. Member names need JSON quotes, and the whole value the shell's: '${quoted}'`;
  } catch {
    return `${why}. Names and text need JSON quotes, and the whole value the shell's, for example '{"x": 1000, "mode": "fast"}'`;
  }
}

function parseFlags(args: string[]) {
  return parseArguments("call", {
    args,
    options: {
      output: { type: "string", short: "o" },
      token: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
}

/**
 * Run `labthings-ts call`; sets `process.exitCode` (0, 1, 2 or 130) rather than throwing.
 *
 * @example
 * ```ts
 * await call(["http://127.0.0.1:5000/stage/", "moveRelative", '{"x": 500}']);
 * ```
 */
export async function call(args: string[]): Promise<void> {
  let parsed: CallArguments | "help";
  try {
    parsed = parseCallArguments(args);
  } catch (error) {
    reportFailure(error);
    return;
  }
  if (parsed === "help") {
    console.log(CALL_USAGE);
    return;
  }
  try {
    const client = await connect(parsed.thingUrl, parsed.token);
    const { properties, actions, events } = client.description;
    const name = parsed.affordance;
    if (Object.hasOwn(properties, name)) await propertyCall(client, parsed);
    else if (Object.hasOwn(actions, name)) await actionCall(client, parsed, actions[name]!);
    else if (Object.hasOwn(events, name)) await eventCall(client, parsed);
    else {
      const known = (kind: string, map: object) => {
        const names = Object.keys(map);
        return names.length > 0 ? `\n  ${kind}: ${names.join(", ")}` : "";
      };
      console.error(
        `labthings-ts call: '${client.title}' has no property, action or event '${name}'.` +
          known("properties", properties) +
          known("actions", actions) +
          known("events", events),
      );
      process.exitCode = 2;
    }
  } catch (error) {
    console.error(`labthings-ts call: ${describeError(error)}`);
    process.exitCode = 1;
  }
}

/** Connect to the TD; `http://host/stage` (no slash) also finds `…/stage/`. */
async function connect(url: string, token: string | undefined): Promise<ThingClient> {
  const options = token ? { headers: { authorization: `Bearer ${token}` } } : {};
  try {
    return await ThingClient.connect(url, options);
  } catch (error) {
    const withSlash = new URL(url);
    if (!(error instanceof HttpError && error.status === 404) || withSlash.pathname.endsWith("/")) {
      throw error;
    }
    withSlash.pathname += "/";
    return ThingClient.connect(withSlash, options);
  }
}

async function propertyCall(client: ThingClient, call: CallArguments): Promise<void> {
  const name = call.affordance;
  if (!call.hasValue) {
    printJson(await client.readProperty(name));
    return;
  }
  if (client.description.properties[name]?.readOnly === true) {
    throw new UsageError(`property '${name}' is read-only`);
  }
  await client.writeProperty(name, call.value);
  console.error(`${name} = ${JSON.stringify(call.value)}`);
}

async function actionCall(
  client: ThingClient,
  call: CallArguments,
  affordance: ActionAffordance,
): Promise<void> {
  const display = new ProgressDisplay(process.stderr, `${thingName(client)}/${call.affordance}`);
  const interrupt = new AbortController();
  const onInterrupt = () => {
    if (interrupt.signal.aborted) process.exit(INTERRUPTED); // a second Ctrl-C: leave now
    display.note("cancelling on the server… (Ctrl-C again to leave at once)");
    interrupt.abort(new Error("interrupted"));
  };
  process.on("SIGINT", onInterrupt);
  try {
    const handle = await client.invokeAction(
      call.affordance,
      call.hasValue ? call.value : undefined,
      {
        signal: interrupt.signal,
        onProgress: (update) => display.update(update),
      },
    );
    let output: unknown;
    try {
      output = await handle.result();
    } catch (error) {
      display.end();
      if (interrupt.signal.aborted) {
        console.error(
          `cancelled: the server reports invocation ${handle.id ?? ""} ${handle.status}`.trim(),
        );
        process.exitCode = INTERRUPTED;
        return;
      }
      throw error;
    }
    display.end();
    await printOutput(client, output, affordance, call.output);
  } catch (error) {
    display.end();
    if (interrupt.signal.aborted && !(error instanceof ThingClientError)) {
      console.error("cancelled before the server accepted the invocation");
      process.exitCode = INTERRUPTED;
      return;
    }
    throw error;
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

async function eventCall(client: ThingClient, call: CallArguments): Promise<void> {
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.on("SIGINT", onInterrupt);
  try {
    console.error(`listening for '${call.affordance}' (Ctrl-C to stop)`);
    for await (const data of client.subscribeEvent(call.affordance, { signal: stop.signal })) {
      console.log(JSON.stringify(data));
    }
  } finally {
    process.off("SIGINT", onInterrupt);
  }
  if (stop.signal.aborted) process.exitCode = INTERRUPTED;
}

/** The output on stdout, or in the `-o` file (a blob's bytes, anything else as JSON). */
async function printOutput(
  client: ThingClient,
  output: unknown,
  affordance: ActionAffordance,
  file: string | undefined,
): Promise<void> {
  const blob = blobReference(output, affordance);
  if (file === undefined) {
    if (output !== undefined) printJson(output);
    if (blob) console.error(`(binary output: add -o FILE to save its ${blob.size ?? "?"} bytes)`);
    return;
  }
  if (blob) {
    const { bytes, mediaType } = await client.downloadBlob(blob);
    await writeFile(file, bytes);
    console.error(`saved ${bytes.length} bytes (${mediaType}) to ${file}`);
    return;
  }
  await writeFile(file, `${JSON.stringify(output, null, 2)}\n`);
  console.error(`saved the output to ${file}`);
}

function blobReference(output: unknown, affordance: ActionAffordance): BlobReference | undefined {
  if (typeof output !== "object" || output === null) return undefined;
  const { href, mediaType, size } = output as Record<string, unknown>;
  if (typeof href !== "string") return undefined;
  const declared = affordance.output?.contentMediaType;
  if (typeof mediaType !== "string" && typeof declared !== "string") return undefined;
  return {
    href,
    mediaType: typeof mediaType === "string" ? mediaType : (declared as string),
    ...(typeof size === "number" ? { size } : {}),
  };
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** `stage` for `http://host/stage/`: the last path segment names the Thing in messages. */
function thingName(client: ThingClient): string {
  const segments = new URL(client.url).pathname.split("/").filter(Boolean);
  return segments.at(-1) ?? client.title;
}

/** The server's Problem Details (title, detail, each invalid field) or the error's message. */
function describeError(error: unknown): string {
  if (error instanceof UsageError) return error.message;
  if (error instanceof InvocationFailedError || error instanceof InvocationCancelledError) {
    return `${error.message}${problemText(error.problem, false)}`;
  }
  if (error instanceof HttpError && error.problem) {
    return `${error.status} ${problemText(error.problem, true).trim()}`;
  }
  if (error instanceof AffordanceNotFoundError || error instanceof ThingClientError)
    return error.message;
  return error instanceof Error ? error.message : String(error);
}

function problemText(problem: ProblemDetails | undefined, withDetail: boolean): string {
  if (!problem) return "";
  const head = [problem.title, withDetail ? problem.detail : undefined].filter(Boolean).join(": ");
  const fields = (problem.errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join("");
  return `${withDetail ? head : ""}${fields}`;
}
