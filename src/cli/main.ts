#!/usr/bin/env node
/** `labthings-ts`: the command-line entry point. */
import { readFileSync } from "node:fs";
import { ConfigError, LabThingsError, ThingLifecycleError } from "../errors.js";
import { call } from "./call.js";
import { clientGen } from "./client-gen.js";
import { devices } from "./devices.js";
import { DISCOVER_USAGE, discover } from "./discover.js";
import { SERVE_USAGE, serve } from "./serve.js";

const USAGE = `Usage: labthings-ts <command> [options]

Commands:
  serve       serve Things over HTTP (default: the simulated microscope)
  call        read or write a property, invoke an action (with progress) or follow an event
  client-gen  write a typed TypeScript client for a Thing, from its TD (URL or file)
  devices     list cameras and serial ports, with the config entry for each
  discover    find servers on the local network (DNS-SD) and list their Things

Run 'labthings-ts <command> --help' for a command's options.`;

function version(): string {
  const pkg = new URL("../../../package.json", import.meta.url);
  const fallback = new URL("../../package.json", import.meta.url);
  for (const url of [pkg, fallback]) {
    try {
      return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
    } catch {}
  }
  return "unknown";
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "call":
      return call(rest);
    case "client-gen":
      return clientGen(rest);
    case "devices":
      return devices(rest);
    case "discover":
      return discover(rest);
    case "--version":
    case "-v":
      console.log(version());
      return;
    case undefined:
    case "--help":
    case "-h":
    case "help":
      console.log(USAGE);
      return;
    default:
      console.error(`labthings-ts: unknown command '${command}'\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(`labthings-ts: ${error.message}`);
    const usage = process.argv[2] === "discover" ? DISCOVER_USAGE : SERVE_USAGE;
    if (error.key === "arguments" || error.key.startsWith("-")) console.error(`\n${usage}`);
    process.exitCode = 2;
  } else if (error instanceof ThingLifecycleError || error instanceof LabThingsError) {
    const cause = error.cause instanceof Error && error.cause.stack ? `\n${error.cause.stack}` : "";
    console.error(`labthings-ts: ${error.message}${cause}`);
    process.exitCode = 1;
  } else {
    console.error("labthings-ts:", error);
    process.exitCode = 1;
  }
});
