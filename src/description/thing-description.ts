/**
 * W3C Thing Description 1.1 for an exposed Thing, following the WoT HTTP Basic Profile.
 * Built from the same declarations as validation and routing, so it cannot drift.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ActionDeclaration, EventDeclaration } from "../model/declarations.js";
import type { ExposedProperty, ExposedThing } from "../runtime/exposed-thing.js";

export const TD_CONTEXT = "https://www.w3.org/2022/wot/td/v1.1";
export const HTTP_BASIC_PROFILE = "https://www.w3.org/2022/wot/profile/http-basic/v1";
export const HTTP_SSE_PROFILE = "https://www.w3.org/2022/wot/profile/http-sse/v1";
/** Vocabulary for `htv:methodName` in forms. */
const HTTP_VOCABULARY = { htv: "http://www.w3.org/2011/http#" };

export const TD_MEDIA_TYPE = "application/td+json";

export interface Form {
  href: string;
  op: string | string[];
  contentType?: string;
  "htv:methodName"?: string;
  subprotocol?: string;
  [key: string]: unknown;
}

export interface SecurityScheme {
  scheme: string;
  [key: string]: unknown;
}

export interface ThingDescription {
  "@context": unknown[];
  title: string;
  description?: string;
  base: string;
  profile: string[];
  securityDefinitions: Record<string, SecurityScheme>;
  security: string[];
  properties: Record<string, Record<string, unknown>>;
  actions: Record<string, Record<string, unknown>>;
  events: Record<string, Record<string, unknown>>;
  links?: Record<string, unknown>[];
  forms: Form[];
  [key: string]: unknown;
}

/**
 * Forms another binding adds to the TDs (after the HTTP forms, which stay the default):
 * the MQTT binding's, for example. Each method gets one affordance and returns its forms.
 */
export interface FormContributor {
  /** JSON-LD prefixes the forms' terms use, added to `@context` (e.g. `{ mqv: "…" }`). */
  readonly context?: Record<string, string>;
  /** Security schemes the forms name in their own `security` (added to the TD's). */
  readonly securityDefinitions?: Record<string, SecurityScheme>;
  propertyForms?(thing: string, property: ExposedProperty): Form[];
  actionForms?(thing: string, action: ActionDeclaration): Form[];
  eventForms?(thing: string, event: EventDeclaration): Form[];
  thingForms?(thing: ExposedThing): Form[];
}

/** What a TD carries besides the affordances: its `id`, other bindings' forms, more links. */
export interface DescriptionOptions {
  /** The TD's `id` (a URI, e.g. `urn:uuid:…`). */
  id?: string;
  contributors?: readonly FormContributor[];
  /** Links added after the stream links (e.g. to the server's own TD). */
  links?: readonly Record<string, unknown>[];
}

export interface DescribeOptions {
  /** Absolute URL of the Thing, ending in `/`; every href in the TD is relative to it. */
  base: string;
  securityDefinitions?: Record<string, SecurityScheme>;
}

const JSON_TYPE = "application/json";
const NOSEC = { nosec_sc: { scheme: "nosec" } };

/** TypeBox marks schemas with symbol keys; JSON carries only string keys, so copy those. */
function dataSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

function propertyAffordance(property: ExposedProperty): Record<string, unknown> {
  const { declaration } = property;
  const forms: Form[] = [];
  if (property.readable) {
    forms.push({
      href: property.name,
      op: ["readproperty"],
      contentType: JSON_TYPE,
      "htv:methodName": "GET",
    });
  }
  if (property.writable) {
    forms.push({
      href: property.name,
      op: ["writeproperty"],
      contentType: JSON_TYPE,
      "htv:methodName": "PUT",
    });
  }
  const affordance: Record<string, unknown> = { ...dataSchema(declaration.schema) };
  if (declaration.title) affordance.title = declaration.title;
  if (declaration.description) affordance.description = declaration.description;
  affordance.readOnly = !property.writable;
  affordance.writeOnly = !property.readable;
  const observable = property.readable && declaration.observable;
  affordance.observable = observable;
  if (observable) forms.push(...sseForms(property.name, ["observeproperty", "unobserveproperty"]));
  affordance.forms = forms;
  return affordance;
}

/**
 * A server-sent-events form (HTTP SSE Profile): GET with `Accept: text/event-stream`;
 * each message's data is JSON. Closing the connection unsubscribes.
 */
function sseForm(href: string, op: string[]): Form {
  return { href, op, subprotocol: "sse", contentType: JSON_TYPE, "htv:methodName": "GET" };
}

/** The query of a stream whose every message comes twice: named, then unnamed. */
export const UNNAMED_TWINS_QUERY = "messages=both";

/**
 * The SSE forms of one property or event: first the same stream with each message also
 * sent unnamed, then the plain one. node-wot 0.9 takes the first form whose `op` fits
 * and hears only unnamed messages (`EventSource.onmessage`); SSE Profile clients listen
 * for the affordance's name, which both streams carry, whichever form they take.
 */
function sseForms(name: string, op: string[]): Form[] {
  return [sseForm(`${name}?${UNNAMED_TWINS_QUERY}`, op), sseForm(name, op)];
}

function eventAffordance(declaration: EventDeclaration): Record<string, unknown> {
  const affordance: Record<string, unknown> = {};
  if (declaration.title) affordance.title = declaration.title;
  if (declaration.description) affordance.description = declaration.description;
  if (declaration.data) affordance.data = dataSchema(declaration.data);
  affordance.forms = sseForms(declaration.name, ["subscribeevent", "unsubscribeevent"]);
  return affordance;
}

/**
 * invokeaction on the action's URL; queryaction and cancelaction on the invocation's
 * URL (the `Location` of the 201), a URI template resolved against `base`.
 */
function actionAffordance(declaration: ActionDeclaration): Record<string, unknown> {
  const invocation = "../action_invocations/{id}";
  const affordance: Record<string, unknown> = {};
  if (declaration.title) affordance.title = declaration.title;
  if (declaration.description) affordance.description = declaration.description;
  if (declaration.input) affordance.input = dataSchema(declaration.input);
  if (declaration.output) affordance.output = dataSchema(declaration.output);
  affordance.safe = declaration.safe;
  affordance.idempotent = declaration.idempotent;
  affordance.synchronous = declaration.synchronous;
  affordance.uriVariables = {
    id: { type: "string", description: "Invocation id, from the Location header" },
  };
  affordance.forms = [
    {
      href: declaration.name,
      op: ["invokeaction"],
      contentType: JSON_TYPE,
      "htv:methodName": "POST",
    },
    ...(declaration.synchronous
      ? []
      : [
          {
            href: invocation,
            op: ["queryaction"],
            contentType: JSON_TYPE,
            "htv:methodName": "GET",
          },
          {
            href: invocation,
            op: ["cancelaction"],
            contentType: JSON_TYPE,
            "htv:methodName": "DELETE",
          },
        ]),
  ];
  return affordance;
}

/**
 * Everything in the TD but `base`, computed once per Thing: serving a TD then costs a
 * shallow copy.
 */
export class ThingDescriptionBuilder {
  readonly #body: Omit<ThingDescription, "base">;

  constructor(
    exposed: ExposedThing,
    securityDefinitions: Record<string, SecurityScheme> = NOSEC,
    options: DescriptionOptions = {},
  ) {
    const contributors = options.contributors ?? [];
    const more = (forms: (c: FormContributor) => Form[] | undefined) =>
      contributors.flatMap((contributor) => forms(contributor) ?? []);
    const properties: Record<string, Record<string, unknown>> = {};
    for (const property of exposed.properties.values()) {
      const affordance = propertyAffordance(property);
      (affordance.forms as Form[]).push(...more((c) => c.propertyForms?.(exposed.name, property)));
      properties[property.name] = affordance;
    }
    const actions: Record<string, Record<string, unknown>> = {};
    for (const declaration of exposed.actions.values()) {
      const affordance = actionAffordance(declaration);
      (affordance.forms as Form[]).push(...more((c) => c.actionForms?.(exposed.name, declaration)));
      actions[declaration.name] = affordance;
    }
    const events: Record<string, Record<string, unknown>> = {};
    for (const declaration of exposed.events.values()) {
      const affordance = eventAffordance(declaration);
      (affordance.forms as Form[]).push(...more((c) => c.eventForms?.(exposed.name, declaration)));
      events[declaration.name] = affordance;
    }
    const writable = [...exposed.properties.values()].some((p) => p.writable);
    const observable = Object.values(properties).some((p) => p.observable === true);
    const forms: Form[] = [
      {
        href: "properties",
        op: ["readallproperties"],
        contentType: JSON_TYPE,
        "htv:methodName": "GET",
      },
    ];
    if (Object.keys(actions).length > 0) {
      forms.push({
        href: "actions",
        op: ["queryallactions"],
        contentType: JSON_TYPE,
        "htv:methodName": "GET",
      });
    }
    if (writable) {
      forms.push({
        href: "properties",
        op: ["writemultipleproperties"],
        contentType: JSON_TYPE,
        "htv:methodName": "PUT",
      });
    }
    if (observable)
      forms.push(sseForm("properties", ["observeallproperties", "unobserveallproperties"]));
    if (Object.keys(events).length > 0) {
      forms.push(sseForm("events", ["subscribeallevents", "unsubscribeallevents"]));
    }
    forms.push(...more((c) => c.thingForms?.(exposed)));
    // Streams are links, not properties: a client reading every property must never hang.
    const links: Record<string, unknown>[] = [...exposed.streams.values()].flatMap(({ name }) => [
      { href: name, rel: "alternate", type: "multipart/x-mixed-replace" },
      { href: `${name}/snapshot`, rel: "alternate", type: "image/jpeg" },
    ]);
    links.push(...(options.links ?? []));
    const context: Record<string, string> = { ...HTTP_VOCABULARY };
    const allSecurity = { ...securityDefinitions };
    for (const contributor of contributors) {
      Object.assign(context, contributor.context);
      Object.assign(allSecurity, contributor.securityDefinitions);
    }
    this.#body = {
      "@context": [TD_CONTEXT, context],
      ...(options.id === undefined ? {} : { id: options.id }),
      title: exposed.title,
      ...(exposed.description ? { description: exposed.description } : {}),
      profile: [HTTP_BASIC_PROFILE, HTTP_SSE_PROFILE],
      securityDefinitions: allSecurity,
      // The TD-wide default stays the HTTP scheme; other bindings' forms name their own.
      security: Object.keys(securityDefinitions),
      properties,
      actions,
      events,
      ...(links.length > 0 ? { links } : {}),
      forms,
    };
  }

  readonly #serialized = new Map<string, string>();

  /**
   * The TD as JSON text for one base URL, cached: a server is reached under few names
   * (a handful of Host headers), so the cache stays small; it is bounded all the same.
   */
  serialize(base: string): string {
    let text = this.#serialized.get(base);
    if (text === undefined) {
      text = JSON.stringify(this.describe(base));
      if (this.#serialized.size >= 32) this.#serialized.clear();
      this.#serialized.set(base, text);
    }
    return text;
  }

  describe(base: string): ThingDescription {
    const { "@context": context, id, title, description, ...rest } = this.#body;
    // Key order for readers: context, id, title, base, then the affordances.
    return {
      "@context": context,
      ...(id === undefined ? {} : { id }),
      title,
      ...(description ? { description } : {}),
      base,
      ...rest,
    } as ThingDescription;
  }
}
