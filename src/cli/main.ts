#!/usr/bin/env node
/** `labthings-ts`: the command-line entry point. */
import { readFileSync } from "node:fs";
import { closest } from "../config/config-problems.js";
import { reportFailure } from "./cli-errors.js";

const COMMANDS = ["serve", "call", "client-gen", "devices", "discover", "init"];

const USAGE = `Usage: labthings-ts <command> [options]

Commands:
  serve       serve Things over HTTP (default: the simulated microscope)
  call        read or write a property, invoke an action (with progress) or follow an event
  client-gen  write a typed TypeScript client for a Thing, from its TD (URL or file)
  devices     list cameras and serial ports, with the config entry for each
  discover    find servers on the local network (DNS-SD) and list their Things
  init        make a new project: a Thing of your own, its config and its tests

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
    // Each command loads what it needs: `call` and `--version` never load the server.
    case "serve":
      return (await import("./serve.js")).serve(rest);
    case "call":
      return (await import("./call.js")).call(rest);
    case "client-gen":
      return (await import("./client-gen.js")).clientGen(rest);
    case "devices":
      return (await import("./devices.js")).devices(rest);
    case "discover":
      return (await import("./discover.js")).discover(rest);
    case "init":
      return (await import("./init.js")).init(rest);
    case "--version":
    case "-v":
      console.log(version());
      return;
    case undefined:
      // No command is a mistake (a script that lost its arguments must not pass).
      console.error(USAGE);
      process.exitCode = 2;
      return;
    case "--help":
    case "-h":
    case "help":
      console.log(USAGE);
      return;
    default: {
      const near = closest(command, COMMANDS);
      const hint = near ? ` (did you mean ${near}?)` : "";
      console.error(`labthings-ts: unknown command '${command}'${hint}\n\n${USAGE}`);
      process.exitCode = 2;
    }
  }
}

main(process.argv.slice(2)).catch((error: unknown) => reportFailure(error));
