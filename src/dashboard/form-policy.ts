/**
 * What the dashboard lets a Thing Description make it do. A TD can come from anywhere
 * (`?td=<url>`, and any web page can send a lab user to such a link), and the page follows
 * its forms, so before a ThingClient sees a TD its forms and links are checked:
 *
 * - every form and link must resolve to the origin the TD was loaded from: a TD speaks for
 *   its own server only, never for this one or a third (the browser's same-origin rule
 *   keeps other pages from acting on a server; following a foreign TD's forms blindly
 *   would undo it);
 * - read and observe operations (readproperty, observeallproperties, queryaction, …) must
 *   use a safe method (GET): they are what the page does on load, without a click;
 * - links must be http(s), so a link can never run script.
 *
 * What fails is left out of the TD the page uses and listed, with why, for the page to
 * show. Tokens follow the same rule in AccessTokens.forOrigin: a client for a TD only ever
 * sends the token of the TD's own origin.
 */
import { formOps } from "../client/form-selection.js";
import type {
  ClientThingDescription,
  FormDescription,
  LinkDescription,
} from "../client/thing-description.js";

/** One form or link the page will not use, and why. */
export interface Refusal {
  /** `properties.speed`, `actions.capture`, `forms`, `links`. */
  where: string;
  /** The operations (or link relation) refused. */
  ops: string[];
  href: string;
  reason: string;
}

/** Operations the page performs without a click, so they may only use a safe method. */
export const READ_OPS: ReadonlySet<string> = new Set([
  "readproperty",
  "readallproperties",
  "readmultipleproperties",
  "observeproperty",
  "observeallproperties",
  "unobserveproperty",
  "unobserveallproperties",
  "subscribeevent",
  "subscribeallevents",
  "unsubscribeevent",
  "unsubscribeallevents",
  "queryaction",
  "queryallactions",
]);

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/**
 * The TD with only the forms and links the page may use, and the refusals. `url` is
 * where the TD was loaded from; its origin is the only one the TD may lead to.
 *
 * @example
 * ```ts
 * const { description, refused } = vetThingDescription(loaded.description, loaded.url);
 * const client = ThingClient.fromDescription(description, loaded.url, { fetch });
 * ```
 */
export function vetThingDescription(
  td: ClientThingDescription,
  url: string,
): { description: ClientThingDescription; refused: Refusal[] } {
  const origin = new URL(url).origin;
  const refused: Refusal[] = [];
  let base: string;
  try {
    base = new URL(td.base ?? url, url).href;
  } catch {
    base = url;
  }
  const vetForms = (
    forms: readonly FormDescription[],
    where: string,
    kind: "property" | "action" | "event" | "thing",
    access: { readOnly?: boolean; writeOnly?: boolean } = {},
  ): FormDescription[] =>
    forms.flatMap((form) => {
      const ops = formOps(form, kind, access);
      const target = resolve(form.href, base);
      if (target === undefined || target.origin !== origin) {
        refused.push({
          where,
          ops,
          href: form.href,
          reason: target
            ? `it leads to ${target.origin}, not to ${origin} where this Thing Description came from`
            : "its href is not a URL",
        });
        return [];
      }
      const method = form["htv:methodName"]?.toUpperCase();
      const unsafeReads =
        method !== undefined && !SAFE_METHODS.has(method)
          ? ops.filter((op) => READ_OPS.has(op))
          : [];
      if (unsafeReads.length > 0) {
        refused.push({
          where,
          ops: unsafeReads,
          href: form.href,
          reason: `${unsafeReads.join(", ")} must only read, but this form says ${method}`,
        });
      }
      const kept = ops.filter((op) => !unsafeReads.includes(op));
      if (kept.length === 0) return [];
      // Explicit ops: a form kept for its write only must not be taken for a read.
      return [{ ...form, op: kept }];
    });

  const properties = Object.fromEntries(
    Object.entries(td.properties).map(([name, property]) => [
      name,
      { ...property, forms: vetForms(property.forms, `properties.${name}`, "property", property) },
    ]),
  );
  const actions = Object.fromEntries(
    Object.entries(td.actions).map(([name, action]) => [
      name,
      { ...action, forms: vetForms(action.forms, `actions.${name}`, "action") },
    ]),
  );
  const events = Object.fromEntries(
    Object.entries(td.events).map(([name, event]) => [
      name,
      { ...event, forms: vetForms(event.forms, `events.${name}`, "event") },
    ]),
  );
  const links = td.links.filter((link) => {
    const reason = linkRefusal(link, base, origin);
    if (reason)
      refused.push({ where: "links", ops: [link.rel ?? "link"], href: link.href, reason });
    return reason === undefined;
  });
  return {
    description: {
      ...td,
      properties,
      actions,
      events,
      links,
      forms: vetForms(td.forms, "forms", "thing"),
    },
    refused,
  };
}

/** Whether a vetted affordance still has a form for `op` (e.g. writeproperty): else its control is left out. */
export function hasForm(forms: readonly FormDescription[], op: string): boolean {
  return forms.some((form) => Array.isArray(form.op) && form.op.includes(op));
}

function linkRefusal(link: LinkDescription, base: string, origin: string): string | undefined {
  const target = resolve(link.href, base);
  if (target === undefined) return "its href is not a URL";
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    return `it is a ${target.protocol} link, not http(s)`;
  }
  if (target.origin !== origin) {
    return `it leads to ${target.origin}, not to ${origin} where this Thing Description came from`;
  }
  return undefined;
}

function resolve(href: string, base: string): URL | undefined {
  try {
    // A URI template's variables cannot change the origin: `{…}` is replaced to parse it.
    return new URL(href.replace(/\{[^}]*\}/g, "x"), base);
  } catch {
    return undefined;
  }
}
