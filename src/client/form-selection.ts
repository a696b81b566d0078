/**
 * Choosing the TD form for an operation and turning it into a request: the op (with the
 * TD's defaults when a form has none), the URL (resolved against the Thing's base, URI
 * templates expanded), the method (`htv:methodName`, else the WoT HTTP Basic Profile's
 * default) and the content type. Only forms this client can speak are chosen: http(s),
 * JSON bodies, and for observe/subscribe operations the SSE subprotocol. Browser-safe.
 */
import type { FormDescription } from "./thing-description.js";

/** A form resolved into what a request needs. */
export interface SelectedForm {
  /** Absolute URL (URI template variables already expanded). */
  url: string;
  method: string;
  contentType: string;
  form: FormDescription;
}

export type AffordanceKindWithForms = "property" | "action" | "event" | "thing";

/** Method per operation when a form has no `htv:methodName` (HTTP Basic and SSE Profiles). */
const DEFAULT_METHODS: Record<string, string> = {
  readproperty: "GET",
  writeproperty: "PUT",
  observeproperty: "GET",
  unobserveproperty: "GET",
  invokeaction: "POST",
  queryaction: "GET",
  cancelaction: "DELETE",
  subscribeevent: "GET",
  unsubscribeevent: "GET",
  readallproperties: "GET",
  writeallproperties: "PUT",
  readmultipleproperties: "GET",
  writemultipleproperties: "PUT",
  observeallproperties: "GET",
  unobserveallproperties: "GET",
  queryallactions: "GET",
  subscribeallevents: "GET",
  unsubscribeallevents: "GET",
};

/** Operations whose answer is a stream of server-sent events. */
const EVENT_STREAM_OPS = new Set([
  "observeproperty",
  "observeallproperties",
  "subscribeevent",
  "subscribeallevents",
]);

const JSON_TYPE = "application/json";

/**
 * The ops a form stands for: its own `op`, or the TD 1.1 defaults for its affordance
 * (a property form without `op` reads and writes, minus what readOnly/writeOnly exclude).
 */
export function formOps(
  form: FormDescription,
  kind: AffordanceKindWithForms,
  access: { readOnly?: boolean; writeOnly?: boolean } = {},
): string[] {
  if (typeof form.op === "string") return [form.op];
  if (Array.isArray(form.op)) return form.op;
  switch (kind) {
    case "property":
      return [
        ...(access.writeOnly ? [] : ["readproperty"]),
        ...(access.readOnly ? [] : ["writeproperty"]),
      ];
    case "action":
      return ["invokeaction"];
    case "event":
      return ["subscribeevent"];
    default:
      return [];
  }
}

/** Whether this client can use `form` for `op`: scheme, media type and subprotocol. */
function usable(form: FormDescription, op: string, base: string): boolean {
  let url: URL;
  try {
    url = new URL(stripTemplates(form.href), base);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  if (EVENT_STREAM_OPS.has(op)) {
    return form.subprotocol === "sse" || isEventStreamType(form.contentType);
  }
  if (form.subprotocol !== undefined) return false;
  return form.contentType === undefined || isJsonType(form.contentType);
}

/**
 * The first form of `forms` this client can use for `op`, resolved against `base`;
 * `undefined` when there is none.
 *
 * @example
 * ```ts
 * selectForm(td.properties.speed.forms, "writeproperty", "property", td.base)
 * // → { url: "http://127.0.0.1:5000/stage/speed", method: "PUT", contentType: "application/json", … }
 * ```
 */
export function selectForm(
  forms: readonly FormDescription[],
  op: string,
  kind: AffordanceKindWithForms,
  base: string,
  options: {
    access?: { readOnly?: boolean; writeOnly?: boolean };
    uriVariables?: Record<string, string | number | boolean>;
  } = {},
): SelectedForm | undefined {
  const form = forms.find(
    (candidate) =>
      formOps(candidate, kind, options.access).includes(op) && usable(candidate, op, base),
  );
  if (!form) return undefined;
  return {
    url: resolveHref(form.href, base, options.uriVariables),
    method: (form["htv:methodName"] ?? DEFAULT_METHODS[op] ?? "GET").toUpperCase(),
    contentType: form.contentType ?? JSON_TYPE,
    form,
  };
}

/** Resolve an href (which may be a URI template) against `base`, expanding `variables`. */
export function resolveHref(
  href: string,
  base: string,
  variables: Record<string, string | number | boolean> = {},
): string {
  return new URL(expandTemplate(href, variables), base).href;
}

/**
 * RFC 6570 level-1 `{name}` and form-style query `{?a,b}` expansion: the two shapes TDs
 * use. A variable without a value expands to nothing.
 */
export function expandTemplate(
  template: string,
  variables: Record<string, string | number | boolean>,
): string {
  return template.replace(/\{([?&]?)([^}]*)\}/g, (_match, operator: string, list: string) => {
    const names = list.split(",").map((name) => name.trim());
    if (operator === "") {
      return names
        .map((name) => (name in variables ? encodeURIComponent(String(variables[name])) : ""))
        .join(",");
    }
    const pairs = names
      .filter((name) => name in variables)
      .map((name) => `${name}=${encodeURIComponent(String(variables[name]))}`);
    if (pairs.length === 0) return "";
    return `${operator}${pairs.join("&")}`;
  });
}

function stripTemplates(href: string): string {
  return href.replace(/\{[^}]*\}/g, "x");
}

/** `application/json`, `application/td+json`, `application/problem+json`, with parameters. */
export function isJsonType(contentType: string | null | undefined): boolean {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return type === JSON_TYPE || type.endsWith("+json");
}

export function isEventStreamType(contentType: string | null | undefined): boolean {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase() === "text/event-stream";
}
