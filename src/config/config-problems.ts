/**
 * Schema problems in words for a person editing a config file or typing flags: the key
 * as a dotted path, what the schema wants, and what it found. Driven by the schema, so
 * a new config key gets the same messages without code here.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.js";
import type { SchemaProblem, SchemaValidator } from "../model/schema-validator.js";

/** Every mistake in `value` against `schema`, in file order, keys prefixed by `prefix`. */
export function configProblems(
  validator: SchemaValidator,
  schema: TSchema,
  value: unknown,
  prefix: readonly string[] = [],
): ConfigProblem[] {
  return validator.problems(schema, value, "").map((problem) => {
    const path = [...prefix, ...pointerSegments(problem.field)];
    if (problem.rule === "required") {
      const member = String(problem.params.missingProperty);
      return { key: [...path, member].join("."), reason: "is missing (it is required)" };
    }
    return { key: path.join("."), reason: reasonFor(problem) };
  });
}

function pointerSegments(pointer: string): string[] {
  return pointer
    .split("/")
    .filter(Boolean)
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"));
}

const TYPE_NAMES: Record<string, string> = {
  integer: "a whole number",
  number: "a number",
  string: "text in quotes",
  boolean: "true or false",
  object: "an object { … }",
  array: "a list [ … ]",
  null: "null",
};

/** Said of a quoted value where the schema wants another type (not said of flags). */
export const AS_TEXT = "(in quotes, so text)";

/** A value as it would be written in the file, cut short. */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

function reasonFor(problem: SchemaProblem): string {
  const found = `not ${shown(problem.value)}`;
  const limit = problem.params.limit;
  switch (problem.rule) {
    case "type": {
      const wanted = (problem.types ?? []).map((t) => TYPE_NAMES[t] ?? t).join(" or ");
      // "5000" for a number: say it is text, the likeliest slip in a JSON file.
      const what = typeof problem.value === "string" ? ` ${AS_TEXT}` : "";
      return `must be ${wanted}, not ${shown(problem.value)}${what}`;
    }
    case "enum":
      return `must be one of ${(problem.allowed ?? (problem.params.allowedValues as unknown[]) ?? []).map(shown).join(", ")}, ${found}`;
    case "additionalProperties": {
      const known = problem.members ?? [];
      const near = closest(problem.field.split("/").pop() ?? "", known);
      if (near) return `unknown key (did you mean '${near}'?)`;
      return known.length > 0 && known.length <= 12
        ? `unknown key (known here: ${known.filter((k) => k !== "$schema").join(", ")})`
        : "unknown key";
    }
    case "finite":
      // JSON reads 1e400 as Infinity; there is no text of it left to show.
      return "is too large a number (JSON reads it as infinity)";
    case "minimum":
      return `must be at least ${limit}, ${found}`;
    case "maximum":
      return `must be at most ${limit}, ${found}`;
    case "exclusiveMinimum":
      return `must be more than ${limit}, ${found}`;
    case "exclusiveMaximum":
      return `must be less than ${limit}, ${found}`;
    case "minLength":
      return limit === 1 ? "must not be empty" : `must be at least ${limit} characters long`;
    case "minProperties":
      return `must have at least ${limit} ${limit === 1 ? "entry" : "entries"}`;
    case "pattern": {
      // A URL's scheme reads better in words than the regex that checks it.
      const scheme = /^\^([a-z]+)s\?:\/\/\[\^\\s/.exec(String(problem.params.pattern))?.[1];
      if (scheme) return `must be a URL starting with ${scheme}:// or ${scheme}s://, ${found}`;
      return `must match ${String(problem.params.pattern)}, ${found}`;
    }
    default:
      return `${problem.message}, ${found}`;
  }
}

/** The known name nearest to a misspelt one (at most two edits away), if any. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
