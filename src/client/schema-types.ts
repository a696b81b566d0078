/**
 * JSON Schema (a TD's DataSchema) to TypeScript type text, for generated clients:
 * objects (required vs optional members, `readOnly` → `readonly`, descriptions as doc
 * comments), arrays and tuples, `enum`/`const` literals, `oneOf`/`anyOf` unions, `allOf`
 * intersections, `type` lists and `nullable`, integer → number. What cannot be expressed
 * (e.g. `$ref`) becomes `unknown`, never `any`. Browser-safe.
 */

type Schema = Record<string, unknown>;

const isSchema = (value: unknown): value is Schema =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A member name as TypeScript needs it: bare when it is an identifier, quoted otherwise. */
export function memberName(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

/**
 * The TypeScript type of values valid against `schema`; `indent` is the indentation of
 * the line the type starts on (object members go one level deeper).
 *
 * @example
 * ```ts
 * schemaToType({ type: "object", properties: { x: { type: "integer" } }, required: ["x"] });
 * // "{\n  x: number;\n}"
 * ```
 */
export function schemaToType(schema: unknown, indent = ""): string {
  if (schema === true || schema === undefined) return "unknown";
  if (schema === false) return "never";
  if (!isSchema(schema)) return "unknown";
  const type = baseType(schema, indent);
  return schema.nullable === true && type !== "unknown" && type !== "null"
    ? union([type, "null"])
    : type;
}

function baseType(schema: Schema, indent: string): string {
  if ("const" in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return union(schema.enum.map(literal));
  for (const key of ["oneOf", "anyOf"] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) {
      const own = withoutKeys(schema, [key]);
      const parts = options.map((option) =>
        schemaToType(isSchema(option) ? { ...own, ...option } : option, indent),
      );
      return union(parts);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const own = withoutKeys(schema, ["allOf"]);
    const parts = schema.allOf.map((part) => schemaToType(part, indent));
    if (hasTypeInformation(own)) parts.unshift(schemaToType(own, indent));
    return intersection(parts);
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length > 1) return union(types.map((t) => typeFor(String(t), schema, indent)));
  if (types[0] === undefined) {
    if (isSchema(schema.properties)) return objectType(schema, indent);
    if (schema.items !== undefined) return arrayType(schema, indent);
    return "unknown";
  }
  return typeFor(String(types[0]), schema, indent);
}

function typeFor(type: string, schema: Schema, indent: string): string {
  switch (type) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array":
      return arrayType(schema, indent);
    case "object":
      return objectType(schema, indent);
    default:
      return "unknown";
  }
}

function arrayType(schema: Schema, indent: string): string {
  const tuple = Array.isArray(schema.prefixItems)
    ? schema.prefixItems
    : Array.isArray(schema.items)
      ? schema.items
      : undefined;
  if (tuple) return `[${tuple.map((item) => schemaToType(item, indent)).join(", ")}]`;
  const item = schemaToType(schema.items, indent);
  return hasTopLevel(item, "|&") ? `(${item})[]` : `${item}[]`;
}

function objectType(schema: Schema, indent: string): string {
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  const inner = `${indent}  `;
  const lines: string[] = [];
  for (const [name, member] of Object.entries(properties)) {
    const comment = docComment(isSchema(member) ? member : {}, inner);
    if (comment) lines.push(comment);
    const readonly = isSchema(member) && member.readOnly === true ? "readonly " : "";
    const optional = required.has(name) ? "" : "?";
    lines.push(
      `${inner}${readonly}${memberName(name)}${optional}: ${schemaToType(member, inner)};`,
    );
  }
  const additional = schema.additionalProperties;
  if (Object.keys(properties).length === 0) {
    if (additional === false) return "Record<string, never>";
    return `{ [key: string]: ${isSchema(additional) ? schemaToType(additional, indent) : "unknown"} }`;
  }
  if (isSchema(additional) || additional === true) {
    // Declared members must fit the index signature too: only `unknown` always does.
    lines.push(`${inner}[key: string]: unknown;`);
  }
  return `{\n${lines.join("\n")}\n${indent}}`;
}

/**
 * A doc comment from a schema's title, description and constraints (unit, range,
 * format, default), at `indent`; "" when there is nothing to say.
 */
export function docComment(schema: Schema, indent: string, lead?: string): string {
  const lines: string[] = [];
  if (lead) lines.push(lead);
  const title = typeof schema.title === "string" ? schema.title : undefined;
  const description = typeof schema.description === "string" ? schema.description : undefined;
  if (title && description) lines.push(`${title}: ${description}`);
  else if (title ?? description) lines.push((title ?? description)!);
  const facts: string[] = [];
  if (typeof schema.unit === "string") facts.push(`unit ${schema.unit}`);
  if (typeof schema.minimum === "number") facts.push(`minimum ${schema.minimum}`);
  if (typeof schema.exclusiveMinimum === "number")
    facts.push(`greater than ${schema.exclusiveMinimum}`);
  if (typeof schema.maximum === "number") facts.push(`maximum ${schema.maximum}`);
  if (typeof schema.exclusiveMaximum === "number")
    facts.push(`less than ${schema.exclusiveMaximum}`);
  if (typeof schema.multipleOf === "number") facts.push(`multiple of ${schema.multipleOf}`);
  if (schema.type === "integer") facts.push("integer");
  if (typeof schema.format === "string") facts.push(`format ${schema.format}`);
  if (typeof schema.contentMediaType === "string")
    facts.push(`media type ${schema.contentMediaType}`);
  if (facts.length > 0) {
    const sentence = `${capitalize(facts.join(", "))}.`;
    // "Motor steps along x. Integer." reads better on one line when it fits.
    const previous = lines.at(-1);
    if (previous !== undefined && previous.length + sentence.length < 90 && lines.length === 1) {
      lines[0] = `${/[.!?:]$/.test(previous) ? previous : `${previous}.`} ${sentence}`;
    } else {
      lines.push(sentence);
    }
  }
  if (schema.default !== undefined) lines.push(`@defaultValue ${JSON.stringify(schema.default)}`);
  if (lines.length === 0) return "";
  const safe = lines.flatMap((line) => line.replaceAll("*/", "*\\/").split("\n"));
  if (safe.length === 1) return `${indent}/** ${safe[0]} */`;
  return [
    `${indent}/**`,
    ...safe.map((line) => `${indent} * ${line}`.trimEnd()),
    `${indent} */`,
  ].join("\n");
}

function hasTypeInformation(schema: Schema): boolean {
  return ["type", "properties", "items", "enum", "const"].some((key) => key in schema);
}

function withoutKeys(schema: Schema, keys: string[]): Schema {
  return Object.fromEntries(Object.entries(schema).filter(([key]) => !keys.includes(key)));
}

function literal(value: unknown): string {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) {
    return JSON.stringify(value);
  }
  return "unknown";
}

function union(parts: string[]): string {
  const unique = [...new Set(parts)];
  if (unique.includes("unknown")) return "unknown";
  if (unique.length === 0) return "never";
  return unique.map((part) => (hasTopLevel(part, "&") ? `(${part})` : part)).join(" | ");
}

function intersection(parts: string[]): string {
  return (
    [...new Set(parts)]
      .filter((part) => part !== "unknown")
      .map((part) => (hasTopLevel(part, "|") ? `(${part})` : part))
      .join(" & ") || "unknown"
  );
}

/** Whether a type text (from `schemaToType`) is one object literal, i.e. can be an interface. */
export function isObjectLiteralType(type: string): boolean {
  return type.startsWith("{\n") && !hasTopLevel(type, "|&");
}

/** Whether `type` has one of `operators` outside braces, brackets, parentheses and strings. */
function hasTopLevel(type: string, operators: string): boolean {
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < type.length; i++) {
    const c = type[i]!;
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if ("{[(".includes(c)) depth++;
    else if ("}])".includes(c)) depth--;
    else if (depth === 0 && operators.includes(c)) return true;
  }
  return false;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
