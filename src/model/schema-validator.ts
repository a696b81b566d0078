import type { TSchema } from "@sinclair/typebox";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FieldError } from "../errors.js";

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/**
 * Validates values against affordance schemas. Strict: no type coercion, no defaults
 * filled in, no properties removed: what was sent is what is checked and stored.
 */
export class SchemaValidator {
  readonly #ajv: Ajv;
  readonly #compiled = new WeakMap<TSchema, ValidateFunction>();

  constructor() {
    this.#ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: false });
    addFormats(this.#ajv);
  }

  /** Compile ahead of time so the first request is not slower and a bad schema fails early. */
  prepare(schema: TSchema): void {
    this.#validatorFor(schema);
  }

  /** The reasons `value` breaks `schema`, each naming the field under `root`; empty when valid. */
  check(schema: TSchema, value: unknown, root: string): FieldError[] {
    const validate = this.#validatorFor(schema);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => toFieldError(error, root));
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

function toFieldError(error: ErrorObject, root: string): FieldError {
  let field = root ? `/${root}${error.instancePath}` : error.instancePath;
  const params = error.params as Record<string, unknown>;
  // Point at the member that is missing or unexpected, not at its parent object.
  if (error.keyword === "required") field += `/${String(params.missingProperty)}`;
  if (error.keyword === "additionalProperties") field += `/${String(params.additionalProperty)}`;
  let message = error.message ?? "is invalid";
  if (error.keyword === "enum") message += `: ${JSON.stringify(params.allowedValues)}`;
  return { field: field || "/", rule: error.keyword, message };
}

/** One line for humans: `/speed must be <= 10000 (maximum); /x must be integer (type)`. */
export function describeFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.field} ${e.message} (${e.rule})`).join("; ");
}
