/**
 * What the decorators record about a Thing class. The records live on the class's
 * decorator metadata (TC39 `Symbol.metadata`), so the TD, the HTTP routes and the
 * validators can be built from the class alone, before any instance exists.
 */
import type { TSchema } from "@sinclair/typebox";
import { ThingDefinitionError } from "../errors.js";

// Node 20 has no Symbol.metadata; TypeScript's and esbuild's decorator helpers both
// pick this one up (esbuild falls back to the same registered symbol).
(Symbol as { metadata: symbol }).metadata ??= Symbol.for("Symbol.metadata");

// Registered symbols, so two copies of this package (say, built and source) agree.
const AFFORDANCES = Symbol.for("labthings-ts.affordances");
const SLOTS = Symbol.for("labthings-ts.slots");

export interface PropertyDeclaration {
  readonly kind: "property";
  /** Name on the wire: the URL segment and the TD key. */
  readonly name: string;
  /** The class member that holds the value. */
  readonly member: string;
  readonly schema: TSchema;
  readonly title?: string;
  readonly description?: string;
  readonly readOnly: boolean;
  readonly writeOnly: boolean;
  readonly observable: boolean;
  /** Declared on a getter (computed) rather than an `accessor` field (stored). */
  readonly computed: boolean;
  /** Network writes fail with 409 while this lock is held. */
  readonly lock?: string;
  /** Persisted per Thing under the settings directory (`@setting`). */
  readonly setting: boolean;
}

/** An action (`@action`): a method taking its validated input and an ActionContext. */
export interface ActionDeclaration {
  readonly kind: "action";
  readonly name: string;
  readonly member: string;
  readonly input?: TSchema;
  readonly output?: TSchema;
  readonly title?: string;
  readonly description?: string;
  readonly synchronous: boolean;
  readonly lock?: { name: string; waitMs?: number };
  readonly safe: boolean;
  readonly idempotent: boolean;
}

/** An event (`@event`): a ThingEvent field whose emissions are validated against `data`. */
export interface EventDeclaration {
  readonly kind: "event";
  readonly name: string;
  readonly member: string;
  /** JSON Schema of the event's data; none means events carry no data. */
  readonly data?: TSchema;
  readonly title?: string;
  readonly description?: string;
}

/** An MJPEG stream: not a WoT affordance but a TD link; its name shares the namespace. */
export interface StreamDeclaration {
  readonly kind: "stream";
  readonly name: string;
  readonly member: string;
  readonly title?: string;
  readonly description?: string;
}

/** The kinds of affordance a Thing can declare. */
export type AffordanceDeclaration =
  | PropertyDeclaration
  | ActionDeclaration
  | EventDeclaration
  | StreamDeclaration;

/** A class of Thing, abstract ones included (slots may name a base class). */
// biome-ignore lint/suspicious/noExplicitAny: constructors of any signature
export type ThingClass<T = object> = abstract new (...args: any[]) => T;

export interface SlotDeclaration {
  readonly name: string;
  readonly member: string;
  readonly target: ThingClass;
  readonly optional: boolean;
}

/**
 * Names that are routes of their own under `/{thing}/` and so cannot be affordances.
 * `ws` is the websocket endpoint; the others are the Profile's "all" operations.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "properties",
  "actions",
  "events",
  "ws",
]);

/** URL-safe and a valid JS identifier-ish name: what appears in paths and the TD. */
export const AFFORDANCE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

type Metadata = Record<PropertyKey, unknown>;

/** The map for this class, copying what the parent class declared (metadata inherits). */
function ownMap<V>(metadata: Metadata, key: symbol): Map<string, V> {
  if (Object.hasOwn(metadata, key)) return metadata[key] as Map<string, V>;
  const inherited = metadata[key] as Map<string, V> | undefined;
  const map = new Map<string, V>(inherited ?? []);
  metadata[key] = map;
  return map;
}

/**
 * The member a decorator is applied to; decorators go on named instance members only
 * (a static or symbol-named member cannot be an affordance).
 */
export function memberName(
  context: { readonly static: boolean; readonly name: string | symbol },
  usage: string,
): string {
  if (context.static || typeof context.name !== "string") throw new ThingDefinitionError(usage);
  return context.name;
}

export function checkAffordanceName(name: string): void {
  if (!AFFORDANCE_NAME.test(name)) {
    throw new ThingDefinitionError(
      `'${name}' is not a valid affordance name: use letters, digits, '_' or '-', starting with a letter or '_'`,
    );
  }
  if (RESERVED_NAMES.has(name)) {
    throw new ThingDefinitionError(
      `'${name}' is reserved (it is a route of every Thing): choose another affordance name`,
    );
  }
}

/** Record an affordance; a second affordance of the same name is a definition error. */
export function declareAffordance(metadata: Metadata, declaration: AffordanceDeclaration): void {
  checkAffordanceName(declaration.name);
  const map = ownMap<AffordanceDeclaration>(metadata, AFFORDANCES);
  const existing = map.get(declaration.name);
  // A subclass re-declaring the same member overrides it; anything else is a clash.
  if (existing && existing.member !== declaration.member) {
    throw new ThingDefinitionError(
      `affordance name '${declaration.name}' is declared twice (members '${existing.member}' and '${declaration.member}'): names must be unique within a Thing`,
    );
  }
  map.set(declaration.name, declaration);
}

export function declareSlot(metadata: Metadata, declaration: SlotDeclaration): void {
  ownMap<SlotDeclaration>(metadata, SLOTS).set(declaration.name, declaration);
}

function metadataOf(cls: ThingClass): Metadata | undefined {
  return (cls as unknown as Record<symbol, Metadata | undefined>)[Symbol.metadata];
}

/** Every affordance a Thing class declares, its parents' included, in declaration order. */
export function affordancesOf(cls: ThingClass): ReadonlyMap<string, AffordanceDeclaration> {
  return (metadataOf(cls)?.[AFFORDANCES] as Map<string, AffordanceDeclaration>) ?? new Map();
}

export function slotsOf(cls: ThingClass): ReadonlyMap<string, SlotDeclaration> {
  return (metadataOf(cls)?.[SLOTS] as Map<string, SlotDeclaration>) ?? new Map();
}
