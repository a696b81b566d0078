/**
 * fast-check arbitraries from the JSON Schema subset Thing Descriptions use (type,
 * minimum/maximum, exclusive bounds, multipleOf, properties/required/
 * additionalProperties, items, enum/const, string lengths): `validValue` for values the
 * schema accepts, `nearMiss` for values just outside it (a bound crossed by a little, a
 * fraction for an integer, an extra or missing key, the wrong type).
 *
 * @example
 * ```ts
 * fc.sample(validValue({ type: "integer", minimum: 10, maximum: 20 }), 3); // e.g. [10, 17, 20]
 * fc.sample(nearMiss({ type: "integer", minimum: 10, maximum: 20 }), 3); // e.g. [21, 9, 10.5]
 * ```
 */
import fc from "fast-check";

/** A TD DataSchema, as much of it as the generators read. */
export interface DataSchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, DataSchema>;
  required?: string[];
  additionalProperties?: boolean | DataSchema;
  items?: DataSchema;
  minItems?: number;
  maxItems?: number;
}

/** Any small JSON value: for schemas without a type, and as "the wrong type". */
export const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 2 });

/** A value the schema accepts. */
export function validValue(schema: DataSchema): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type) {
    case "integer":
      return validInteger(schema);
    case "number":
      return validNumber(schema);
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "string":
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: schema.maxLength ?? 40 });
    case "array": {
      const items = schema.items ? validValue(schema.items) : anyJson;
      return fc.array(items, { minLength: schema.minItems ?? 0, maxLength: schema.maxItems ?? 5 });
    }
    case "object":
      return validObject(schema);
    default:
      return anyJson;
  }
}

function bounds(schema: DataSchema): { low: number; high: number } {
  let low = schema.minimum ?? -1e6;
  let high = schema.maximum ?? 1e6;
  if (schema.exclusiveMinimum !== undefined) low = Math.max(low, schema.exclusiveMinimum);
  if (schema.exclusiveMaximum !== undefined) high = Math.min(high, schema.exclusiveMaximum);
  return { low, high };
}

function validInteger(schema: DataSchema): fc.Arbitrary<number> {
  const { low, high } = bounds(schema);
  const step = schema.multipleOf && Number.isInteger(schema.multipleOf) ? schema.multipleOf : 1;
  let min = Math.ceil(low / step);
  let max = Math.floor(high / step);
  if (schema.exclusiveMinimum !== undefined && min * step === schema.exclusiveMinimum) min += 1;
  if (schema.exclusiveMaximum !== undefined && max * step === schema.exclusiveMaximum) max -= 1;
  // The bounds themselves are where mistakes hide: pick them often.
  return fc
    .oneof(
      { arbitrary: fc.integer({ min, max }), weight: 3 },
      { arbitrary: fc.constantFrom(min, max), weight: 1 },
    )
    .map((n) => n * step);
}

function validNumber(schema: DataSchema): fc.Arbitrary<number> {
  const { low, high } = bounds(schema);
  const double = fc.double({
    min: low,
    max: high,
    minExcluded: schema.exclusiveMinimum !== undefined && low === schema.exclusiveMinimum,
    maxExcluded: schema.exclusiveMaximum !== undefined && high === schema.exclusiveMaximum,
    noNaN: true,
    noDefaultInfinity: true,
  });
  const edges = [schema.minimum, schema.maximum].filter((n): n is number => n !== undefined);
  return edges.length > 0
    ? fc.oneof(
        { arbitrary: double, weight: 3 },
        { arbitrary: fc.constantFrom(...edges), weight: 1 },
      )
    : double;
}

function validObject(schema: DataSchema): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, child] of Object.entries(properties)) record[name] = validValue(child);
  return fc.record(record, { requiredKeys: schema.required ?? [] });
}

/** A value just outside what the schema accepts (or, for an open schema, a near one). */
export function nearMiss(schema: DataSchema): fc.Arbitrary<unknown> {
  const misses: fc.Arbitrary<unknown>[] = [wrongType(schema)];
  if (schema.type === "integer" || schema.type === "number") {
    const edges: number[] = [];
    if (schema.maximum !== undefined) edges.push(schema.maximum + 1, schema.maximum + 1e-9);
    if (schema.minimum !== undefined) edges.push(schema.minimum - 1, schema.minimum - 1e-9);
    if (schema.exclusiveMinimum !== undefined) edges.push(schema.exclusiveMinimum);
    if (schema.exclusiveMaximum !== undefined) edges.push(schema.exclusiveMaximum);
    if (schema.type === "integer") {
      const { low, high } = bounds(schema);
      edges.push(low + 0.5, Math.min(high, low + 2) - 0.25);
      if (schema.multipleOf) edges.push(Math.ceil(low / schema.multipleOf) * schema.multipleOf + 1);
    }
    if (edges.length > 0) misses.push(fc.constantFrom(...edges));
  }
  if (schema.type === "string" && schema.maxLength !== undefined) {
    misses.push(fc.constant("x".repeat(schema.maxLength + 1)));
  }
  if (schema.type === "object" && schema.properties) misses.push(nearMissObject(schema));
  return fc.oneof(...misses);
}

function nearMissObject(schema: DataSchema): fc.Arbitrary<unknown> {
  const properties = Object.entries(schema.properties ?? {});
  const valid = validObject(schema);
  const variants: fc.Arbitrary<unknown>[] = [];
  if (schema.additionalProperties === false) {
    variants.push(
      fc
        .tuple(valid, fc.string({ minLength: 1, maxLength: 8 }), anyJson)
        .filter(([, key]) => !Object.hasOwn(schema.properties ?? {}, key) && key !== "__proto__")
        .map(([value, key, extra]) => ({ ...value, [key]: extra })),
    );
  }
  for (const required of schema.required ?? []) {
    variants.push(
      valid.map((value) => {
        const { [required]: _, ...rest } = value;
        return rest;
      }),
    );
  }
  if (properties.length > 0) {
    variants.push(
      fc
        .tuple(valid, fc.constantFrom(...properties))
        .chain(([value, [name, child]]) =>
          nearMiss(child).map((miss) => ({ ...value, [name]: miss })),
        ),
    );
  }
  return variants.length > 0 ? fc.oneof(...variants) : wrongType(schema);
}

/** A value of another JSON type than the schema's. */
function wrongType(schema: DataSchema): fc.Arbitrary<unknown> {
  const byType: Record<string, fc.Arbitrary<unknown>> = {
    number: fc.oneof(fc.integer(), fc.constant(1.5)),
    string: fc.string({ maxLength: 10 }),
    boolean: fc.boolean(),
    null: fc.constant(null),
    array: fc.array(fc.integer(), { maxLength: 3 }),
    object: fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  };
  const own = schema.type === "integer" ? "number" : schema.type;
  const others = Object.entries(byType)
    .filter(([type]) => type !== own)
    .map(([, arbitrary]) => arbitrary);
  return fc.oneof(...others);
}
