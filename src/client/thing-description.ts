/**
 * The Thing Description as a client reads it: only what ThingClient uses is typed, and
 * `parseThingDescription` checks just enough shape to fail clearly on something that is
 * not a TD (an HTML page, an error body, a TD with a broken form). Browser-safe.
 */
import { ProtocolError } from "./client-errors.js";

/** A JSON Schema (TD DataSchema); only the keywords code generation reads are typed. */
export interface DataSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  readOnly?: boolean;
  writeOnly?: boolean;
  [keyword: string]: unknown;
}

/** A TD form: where and how to perform an operation. */
export interface FormDescription {
  href: string;
  op?: string | string[];
  contentType?: string;
  subprotocol?: string;
  "htv:methodName"?: string;
  [member: string]: unknown;
}

export interface InteractionAffordance extends DataSchema {
  forms: FormDescription[];
  uriVariables?: Record<string, DataSchema>;
}

export interface PropertyAffordance extends InteractionAffordance {
  observable?: boolean;
}

export interface ActionAffordance extends InteractionAffordance {
  input?: DataSchema;
  output?: DataSchema;
  safe?: boolean;
  idempotent?: boolean;
  synchronous?: boolean;
}

export interface EventAffordance extends InteractionAffordance {
  data?: DataSchema;
}

export interface LinkDescription {
  href: string;
  rel?: string;
  type?: string;
  [member: string]: unknown;
}

/** A W3C Thing Description (1.0 or 1.1) as ThingClient reads it. */
export interface ClientThingDescription {
  title: string;
  description?: string;
  base?: string;
  properties: Record<string, PropertyAffordance>;
  actions: Record<string, ActionAffordance>;
  events: Record<string, EventAffordance>;
  links: LinkDescription[];
  forms: FormDescription[];
  [member: string]: unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Check that `value` looks like a Thing Description and return it with `properties`,
 * `actions`, `events`, `links` and `forms` filled in (empty when absent).
 *
 * @example
 * ```ts
 * const td = parseThingDescription(JSON.parse(text), "file:///tmp/stage.json");
 * ```
 * @throws ProtocolError naming the first member that is wrong.
 */
export function parseThingDescription(value: unknown, source: string): ClientThingDescription {
  const fail = (what: string): never => {
    throw new ProtocolError(`${source} is not a Thing Description: ${what}`, { url: source });
  };
  if (!isObject(value)) return fail(`expected a JSON object, got ${describe(value)}`);
  if (typeof value.title !== "string" || value.title === "") {
    return fail("'title' must be a non-empty string");
  }
  if (value.base !== undefined && typeof value.base !== "string") {
    return fail("'base' must be a string");
  }
  const checkForms = (forms: unknown, where: string, required: boolean) => {
    if (forms === undefined && !required) return;
    const path = where === "" ? "forms" : `${where}.forms`;
    if (!Array.isArray(forms)) return fail(`'${path}' must be an array`);
    forms.forEach((form: unknown, index) => {
      if (!isObject(form) || typeof form.href !== "string") {
        fail(`'${path}[${index}].href' must be a string`);
      }
    });
  };
  for (const kind of ["properties", "actions", "events"] as const) {
    const affordances = value[kind];
    if (affordances === undefined) continue;
    if (!isObject(affordances)) return fail(`'${kind}' must be an object`);
    for (const [name, affordance] of Object.entries(affordances)) {
      if (!isObject(affordance)) return fail(`'${kind}.${name}' must be an object`);
      checkForms(affordance.forms, `${kind}.${name}`, true);
    }
  }
  checkForms(value.forms, "", false);
  if (value.links !== undefined) {
    if (!Array.isArray(value.links)) return fail("'links' must be an array");
    value.links.forEach((link: unknown, index) => {
      if (!isObject(link) || typeof link.href !== "string") {
        fail(`'links[${index}].href' must be a string`);
      }
    });
  }
  return {
    ...value,
    title: value.title,
    properties: (value.properties ?? {}) as Record<string, PropertyAffordance>,
    actions: (value.actions ?? {}) as Record<string, ActionAffordance>,
    events: (value.events ?? {}) as Record<string, EventAffordance>,
    links: (value.links ?? []) as LinkDescription[],
    forms: (value.forms ?? []) as FormDescription[],
  };
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return `a ${typeof value}`;
}
