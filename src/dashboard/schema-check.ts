/**
 * Checks a value against the JSON Schema of a Thing Description before it is sent, so a
 * person sees "must be at most 1000000" next to the field at once. It covers the keywords
 * forms can break (type, enum, const, limits, multipleOf, lengths, pattern, required,
 * additionalProperties, items); anything else is left to the server, whose 400 Problem
 * Details the dashboard shows too. No DOM: usable anywhere.
 */

/** A JSON Schema as it appears in a TD (only the keywords read here are typed). */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  unit?: string;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema | JsonSchema[];
  minItems?: number;
  maxItems?: number;
  readOnly?: boolean;
  writeOnly?: boolean;
  contentMediaType?: string;
  [keyword: string]: unknown;
}

/** One broken rule: where (a JSON Pointer below the checked value, "" for itself) and why. */
export interface SchemaProblem {
  path: string;
  message: string;
}

/** The schema's type, or the one its `enum`/`const` implies. */
export function schemaType(schema: JsonSchema): string | undefined {
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== "null");
  if (schema.properties) return "object";
  return undefined;
}

/**
 * Every rule `value` breaks, or `[]`.
 *
 * @example
 * ```ts
 * checkValue(2_000_000, { type: "integer", maximum: 1_000_000 });
 * // → [{ path: "", message: "must be at most 1000000" }]
 * ```
 */
export function checkValue(value: unknown, schema: JsonSchema, path = ""): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const fail = (message: string) => problems.push({ path, message });

  if (schema.const !== undefined && !sameJson(value, schema.const)) {
    fail(`must be ${JSON.stringify(schema.const)}`);
    return problems;
  }
  if (schema.enum && !schema.enum.some((allowed) => sameJson(value, allowed))) {
    fail(`must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`);
    return problems;
  }
  const types = typeof schema.type === "string" ? [schema.type] : (schema.type ?? []);
  if (types.length > 0 && !types.some((type) => hasType(value, type))) {
    fail(`must be ${types.map(typeName).join(" or ")}`);
    return problems;
  }

  if (typeof value === "number") {
    const { minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf } = schema;
    if (minimum !== undefined) {
      if (exclusiveMinimum === true ? value <= minimum : value < minimum)
        fail(
          exclusiveMinimum === true
            ? `must be more than ${minimum}`
            : `must be at least ${minimum}`,
        );
    }
    if (maximum !== undefined) {
      if (exclusiveMaximum === true ? value >= maximum : value > maximum)
        fail(
          exclusiveMaximum === true ? `must be less than ${maximum}` : `must be at most ${maximum}`,
        );
    }
    if (typeof exclusiveMinimum === "number" && value <= exclusiveMinimum)
      fail(`must be more than ${exclusiveMinimum}`);
    if (typeof exclusiveMaximum === "number" && value >= exclusiveMaximum)
      fail(`must be less than ${exclusiveMaximum}`);
    if (multipleOf !== undefined && multipleOf > 0 && !isMultiple(value, multipleOf))
      fail(`must be a multiple of ${multipleOf}`);
  }

  if (typeof value === "string") {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength)
      fail(
        schema.minLength === 1
          ? "must not be empty"
          : `must be at least ${schema.minLength} characters`,
      );
    if (schema.maxLength !== undefined && length > schema.maxLength)
      fail(`must be at most ${schema.maxLength} characters`);
    if (schema.pattern !== undefined && !matches(value, schema.pattern))
      fail(`must match the pattern ${schema.pattern}`);
  }

  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      fail(`must have at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      fail(`must have at most ${schema.maxItems} items`);
    if (schema.items && !Array.isArray(schema.items)) {
      const itemSchema = schema.items;
      value.forEach((item, index) => {
        problems.push(...checkValue(item, itemSchema, `${path}/${index}`));
      });
    }
  }

  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const properties = schema.properties ?? {};
    for (const name of schema.required ?? []) {
      if (record[name] === undefined)
        problems.push({ path: `${path}/${pointer(name)}`, message: "is required" });
    }
    for (const [name, item] of Object.entries(record)) {
      if (item === undefined) continue;
      const propertySchema = properties[name];
      if (propertySchema) {
        problems.push(...checkValue(item, propertySchema, `${path}/${pointer(name)}`));
      } else if (schema.additionalProperties === false) {
        problems.push({ path: `${path}/${pointer(name)}`, message: "is not allowed here" });
      } else if (typeof schema.additionalProperties === "object") {
        problems.push(...checkValue(item, schema.additionalProperties, `${path}/${pointer(name)}`));
      }
    }
  }
  return problems;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    default:
      return true;
  }
}

function typeName(type: string): string {
  const names: Record<string, string> = {
    integer: "a whole number",
    number: "a number",
    string: "text",
    boolean: "true or false",
    null: "null",
    array: "a list",
    object: "an object",
  };
  return names[type] ?? type;
}

/** Multiples of decimals (0.1) suffer from binary rounding: compare with a tolerance. */
function isMultiple(value: number, divisor: number): boolean {
  const quotient = value / divisor;
  return Math.abs(quotient - Math.round(quotient)) < 1e-9 * Math.max(1, Math.abs(quotient));
}

function matches(value: string, pattern: string): boolean {
  try {
    return new RegExp(pattern, "u").test(value);
  } catch {
    return true; // a pattern this browser cannot compile is left to the server
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Escape a name for a JSON Pointer (RFC 6901). */
export function pointer(name: string): string {
  return name.replace(/~/g, "~0").replace(/\//g, "~1");
}
