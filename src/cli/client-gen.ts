/**
 * `labthings-ts client-gen <TD URL or file> [-o out.ts]`: write a typed TypeScript client
 * module for a Thing (see src/client/codegen.ts).
 */
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ThingClientError } from "../client/client-errors.js";
import { generateClientModule } from "../client/codegen.js";
import { ThingClient } from "../client/thing-client.js";
import { parseThingDescription } from "../client/thing-description.js";

export const CLIENT_GEN_USAGE = `Usage: labthings-ts client-gen <TD URL or file> [options]

Writes a TypeScript module with the Thing's property, action and event types and a
typed client class over ThingClient.

Options:
  -o, --out FILE        write the module here (default: standard output)
      --import MODULE   where the module imports ThingClient from
                        (default labthings-ts/client)
      --name CLASS      the client class's name (default: from the TD's title)
  -h, --help            show this help

Examples:
  labthings-ts client-gen http://127.0.0.1:5000/stage/ -o stage-client.ts
  labthings-ts client-gen camera-td.json --name CameraClient`;

/** Run the command; sets process.exitCode (2: bad arguments, 1: the TD could not be had). */
export async function clientGen(argv: string[]): Promise<void> {
  let values: { out?: string; import?: string; name?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: "string", short: "o" },
        import: { type: "string" },
        name: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    return usageError((error as Error).message);
  }
  if (values.help) {
    console.log(CLIENT_GEN_USAGE);
    return;
  }
  if (positionals.length !== 1) {
    return usageError(
      positionals.length === 0 ? "give one TD URL or file" : "give only one TD URL or file",
    );
  }
  if (values.name !== undefined && !/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(values.name)) {
    return usageError(`--name '${values.name}' is not a TypeScript identifier`);
  }
  const source = positionals[0]!;
  try {
    const description = /^https?:\/\//i.test(source)
      ? (await ThingClient.connect(source)).description
      : await readDescriptionFile(source);
    const module = generateClientModule(description, {
      source,
      ...(values.import !== undefined ? { importFrom: values.import } : {}),
      ...(values.name !== undefined ? { className: values.name } : {}),
    });
    if (values.out === undefined) {
      process.stdout.write(module);
    } else {
      await writeFile(values.out, module);
      console.error(`labthings-ts client-gen: wrote ${values.out} for '${description.title}'`);
    }
  } catch (error) {
    if (!(error instanceof ThingClientError) && !isFileError(error)) throw error;
    console.error(`labthings-ts client-gen: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

async function readDescriptionFile(path: string) {
  const text = await readFile(path, "utf8");
  const url = pathToFileURL(resolve(path)).href;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ThingClientError(`${path} is not JSON: ${(error as Error).message}`, { url });
  }
  return parseThingDescription(json, path);
}

function isFileError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string";
}

function usageError(message: string): void {
  console.error(`labthings-ts client-gen: ${message}\n\n${CLIENT_GEN_USAGE}`);
  process.exitCode = 2;
}
