import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** The full path of `command` as the shell would find it on PATH, or undefined. */
export function findExecutable(command: string, path = process.env.PATH ?? ""): string | undefined {
  const candidates =
    isAbsolute(command) || command.includes("/")
      ? [command]
      : path
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
