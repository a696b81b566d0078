import type { TSchema } from "@sinclair/typebox";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FieldError } from "../errors.js";

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** A FieldError with what a message for a person needs: the rule's parameters and the value. */
export interface SchemaProblem extends FieldError {
  /** ajv's parameters of the rule, e.g. `{ limit: 100 }` or `{ missingProperty: "x" }`. */
  readonly params: Readonly<Record<string, unknown>>;
  /** The value found at `field` (for `required`: the object missing the member). */
  readonly value: unknown;
  /** For a union of constants (an enum written as literals): the values it allows. */
  readonly allowed?: readonly unknown[];
  /** For `type`: the JSON types the schema wants there. */
  readonly types?: readonly string[];
  /** For `additionalProperties`: the members the object may have. */
  readonly members?: readonly string[];
}

/**
 * Validates values against affordance schemas. Strict: no type coercion, no defaults
 * filled in, no properties removed: what was sent is what is checked and stored.
 * Reasons come in the order of the value's own members, unions say what they allow
 * instead of listing every branch's complaint, and a missing member is reported at the
 * object it is missing from.
 */
export class SchemaValidator {
  readonly #ajv: Ajv;
  readonly #compiled = new WeakMap<TSchema, ValidateFunction>();

  constructor() {
    // verbose: each error carries its schema and data, which the union handling reads.
    this.#ajv = new Ajv({
      allErrors: true,
      strict: false,
      coerceTypes: false,
      useDefaults: false,
      verbose: true,
    });
    addFormats(this.#ajv);
  }

  /** Compile ahead of time so the first request is not slower and a bad schema fails early. */
  prepare(schema: TSchema): void {
    this.#validatorFor(schema);
  }

  /** The reasons `value` breaks `schema`, each naming the field under `root`; empty when valid. */
  check(schema: TSchema, value: unknown, root: string): FieldError[] {
    return this.problems(schema, value, root).map(({ field, rule, message }) => ({
      field,
      rule,
      message,
    }));
  }

  /** Like `check`, with each rule's parameters and the offending value (for people's messages). */
  problems(schema: TSchema, value: unknown, root: string): SchemaProblem[] {
    // JSON.parse reads 1e400 as Infinity, and ajv takes Infinity for a number and even an
    // integer: a move of `{"x": 1e400}` would reach the Thing. No affordance means that.
    const infinite = everyNumberFinite(value)
      ? []
      : nonFiniteNumbers(value, root ? `/${root}` : "");
    const validate = this.#validatorFor(schema);
    if (validate(value)) return infinite;
    const kept = collapseUnions(validate.errors ?? []);
    const problems = kept
      .map((error) => ({ error, order: orderInValue(value, error) }))
      .sort((a, b) => compareOrder(a.order, b.order))
      .map(({ error }) => toProblem(error, root));
    // What else ajv said of an infinite number (a maximum, say) follows from it.
    const infiniteAt = new Set(infinite.map((problem) => problem.field));
    return [...infinite, ...problems.filter((problem) => !infiniteAt.has(problem.field))];
  }

  #validatorFor(schema: TSchema): ValidateFunction {
    let validate = this.#compiled.get(schema);
    if (!validate) {
      validate = this.#ajv.compile(schema);
      this.#compiled.set(schema, validate);
    }
    return validate;
  }
}

/** The check on every validation: no allocation, no field names. */
function everyNumberFinite(value: unknown): boolean {
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(everyNumberFinite);
  if (isRecord(value)) {
    for (const key in value) if (!everyNumberFinite(value[key])) return false;
  }
  return true;
}

/** Every number in `value` that is not finite, as a problem at its place (when there is one). */
function nonFiniteNumbers(value: unknown, field: string): SchemaProblem[] {
  if (typeof value === "number") {
    if (Number.isFinite(value)) return [];
    return [
      {
        field,
        rule: "finite",
        message: "must be a finite number (not too large)",
        params: {},
        value,
      },
    ];
  }
  if (Array.isArray(value))
    return value.flatMap((item, i) => nonFiniteNumbers(item, `${field}/${i}`));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([key, item]) =>
      nonFiniteNumbers(item, `${field}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`),
    );
  }
  return [];
}

/** A union-of-constants error carries its allowed values; others as ajv made them. */
type Reported = ErrorObject & { allowed?: unknown[]; types?: string[] };

const UNIONS = new Set(["anyOf", "oneOf"]);

/**
 * ajv reports a failed union as the union's own error plus every branch's errors. Keep
 * what helps: for a union of constants one "must be one of" error; otherwise the errors
 * of the branch whose type fits the value (the closest miss), or, when no branch's type
 * fits, one "must be <types>" error. Outer unions first, so a dropped branch's inner
 * unions go with it.
 */
function collapseUnions(errors: readonly ErrorObject[]): Reported[] {
  let remaining: Reported[] = [...errors];
  const unions = errors
    .filter((e) => UNIONS.has(e.keyword) && Array.isArray(e.schema))
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const union of unions) {
    if (!remaining.includes(union)) continue; // inside a branch already dropped
    const prefix = `${union.schemaPath}/`;
    const inside = (e: ErrorObject) => e.schemaPath.startsWith(prefix);
    const branches = union.schema as Array<Record<string, unknown>>;
    const branchOf = (e: ErrorObject) => Number(e.schemaPath.slice(prefix.length).split("/")[0]);
    let replacement: Reported[];
    const constants = branches.every((b) => "const" in b)
      ? branches.map((b) => b.const)
      : branches.every((b) => Array.isArray(b.enum))
        ? branches.flatMap((b) => b.enum as unknown[])
        : undefined;
    if (constants) {
      replacement = [{ ...union, keyword: "enum", allowed: constants, message: "" }];
    } else {
      // A branch "fits" when it has no type error at the union's own place.
      const misfits = new Set(
        remaining
          .filter(
            (e) =>
              inside(e) &&
              e.instancePath === union.instancePath &&
              (e.keyword === "type" || e.keyword === "const"),
          )
          .map(branchOf),
      );
      const fitting = branches.map((_, i) => i).filter((i) => !misfits.has(i));
      if (fitting.length === 0) {
        const types = [...new Set(branches.flatMap(branchTypes))];
        replacement = [{ ...union, keyword: "type", types, message: "" }];
      } else {
        // The fitting branch with the fewest complaints is the one the sender meant.
        const count = (i: number) => remaining.filter((e) => inside(e) && branchOf(e) === i).length;
        const chosen = fitting.reduce((best, i) => (count(i) < count(best) ? i : best));
        replacement = remaining.filter((e) => inside(e) && branchOf(e) === chosen);
      }
    }
    const at = remaining.indexOf(union);
    remaining = [
      ...remaining.slice(0, at).filter((e) => !inside(e)),
      ...replacement,
      ...remaining.slice(at + 1).filter((e) => !inside(e)),
    ];
  }
  return remaining;
}

function branchTypes(branch: Record<string, unknown>): string[] {
  if (typeof branch.type === "string") return [branch.type];
  if (Array.isArray(branch.type)) return branch.type.map(String);
  if ("const" in branch) return [jsonType(branch.const)];
  return ["value"];
}

/** The JSON type of a value, as JSON Schema names it. */
export function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function toProblem(error: Reported, root: string): SchemaProblem {
  const params = error.params as Record<string, unknown>;
  let field = root ? `/${root}${error.instancePath}` : error.instancePath;
  // An unexpected member exists in the value: point at it. A missing one does not, so
  // `required` stays at the object it is missing from and the message names the member.
  if (error.keyword === "additionalProperties") field += `/${String(params.additionalProperty)}`;
  let message = error.message ?? "is invalid";
  if (error.keyword === "required")
    message = `must have required property '${String(params.missingProperty)}'`;
  if (error.keyword === "additionalProperties") message = "is not allowed here (unknown member)";
  if (error.allowed)
    message = `must be one of ${error.allowed.map((v) => JSON.stringify(v)).join(", ")}`;
  else if (error.keyword === "enum" && Array.isArray(params.allowedValues))
    message = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  if (error.types) message = `must be ${error.types.join(" or ")}`;
  const value =
    error.keyword === "additionalProperties" && isRecord(error.data)
      ? error.data[String(params.additionalProperty)]
      : error.data;
  const types =
    error.types ??
    (error.keyword === "type"
      ? Array.isArray(params.type)
        ? params.type.map(String)
        : String(params.type).split(",")
      : undefined);
  const declared = (error.parentSchema as { properties?: object } | undefined)?.properties;
  const members =
    error.keyword === "additionalProperties" && declared ? Object.keys(declared) : undefined;
  return {
    field: field || "/",
    rule: error.allowed ? "enum" : error.keyword,
    message,
    params,
    value,
    ...(error.allowed ? { allowed: error.allowed } : {}),
    ...(types ? { types } : {}),
    ...(members ? { members } : {}),
  };
}

/**
 * Where an error sits in the value, as the position of each member on its path (object
 * members in their written order, array items by index), so errors sort as the value
 * reads. A missing member sorts after everything present in its object.
 */
function orderInValue(value: unknown, error: ErrorObject): number[] {
  const order: number[] = [];
  let current = value;
  const segments = error.instancePath.split("/").slice(1).map(unescapePointer);
  const params = error.params as Record<string, unknown>;
  if (error.keyword === "additionalProperties") segments.push(String(params.additionalProperty));
  for (const segment of segments) {
    if (Array.isArray(current)) {
      order.push(Number(segment));
      current = current[Number(segment)];
    } else if (isRecord(current)) {
      const index = Object.keys(current).indexOf(segment);
      order.push(index < 0 ? Number.POSITIVE_INFINITY : index);
      current = current[segment];
    } else break;
  }
  if (error.keyword === "required") order.push(Number.POSITIVE_INFINITY);
  return order;
}

function compareOrder(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

const unescapePointer = (segment: string) => segment.replaceAll("~1", "/").replaceAll("~0", "~");

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One line for humans: `/speed must be <= 10000 (maximum); /x must be integer (type)`. */
export function describeFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field} ${e.message} (${e.rule})`).join("; ");
}
