import { InvalidInputError, ThingDefinitionError } from "../errors.js";
import type { ThingClass } from "./declarations.js";
import { affordancesOf } from "./declarations.js";
import type { ThingLogger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { describeFieldErrors, SchemaValidator } from "./schema-validator.js";

/** Called with the property's wire name and its new value. */
export type PropertyChangeListener = (name: string, value: unknown) => void;

/** Called with the event's wire name and its (validated) data. */
export type EventListener = (name: string, data: unknown) => void;

/**
 * What a running server gives a Thing: its name and a logger. This small seam is all
 * a Thing knows of the server, so a Thing works (and is unit-tested) without one.
 */
export interface ThingHost {
  readonly name: string;
  readonly logger: ThingLogger;
  /** Every readable property of every Thing on the server, by Thing name. */
  readAllThings(): Record<string, Record<string, unknown>>;
  /** The server's validator (shared compiled schemas). */
  readonly validator: SchemaValidator;
}

const BRAND = Symbol.for("labthings-ts.Thing");
const HOST = Symbol.for("labthings-ts.host");
const LISTENERS = Symbol.for("labthings-ts.listeners");
const EVENT_LISTENERS = Symbol.for("labthings-ts.eventListeners");
const REASSIGN_LISTENERS = Symbol.for("labthings-ts.reassignListeners");
const OWN_VALIDATOR = Symbol.for("labthings-ts.ownValidator");
const UNAVAILABLE = Symbol.for("labthings-ts.unavailable");

/**
 * Base class of every Thing. Declare affordances with the decorators
 * (`@property`, …) and open or release hardware in `start()` / `stop()`.
 *
 * @example
 * ```ts
 * class Thermometer extends Thing {
 *   static override title = "Thermometer";
 *   @property({ schema: Type.Number({ unit: "°C" }), readOnly: true })
 *   accessor temperature = 21.5;
 * }
 * ```
 */
export abstract class Thing {
  /** Human-readable title for the TD; defaults to the class name. */
  static title?: string;
  /** Longer description for the TD. */
  static description?: string;

  declare readonly [BRAND]: true;
  private [HOST]: ThingHost | undefined;
  private readonly [LISTENERS] = new Set<PropertyChangeListener>();
  private readonly [EVENT_LISTENERS] = new Set<EventListener>();
  private readonly [REASSIGN_LISTENERS] = new Set<PropertyChangeListener>();
  private [OWN_VALIDATOR]: SchemaValidator | undefined;
  private [UNAVAILABLE]: string | undefined;

  /** The name the server gave this Thing (its URL segment); the class name when detached. */
  get name(): string {
    return this[HOST]?.name ?? this.constructor.name;
  }

  /** A logger bound to this Thing's name; silent until the Thing is served. */
  get logger(): ThingLogger {
    return this[HOST]?.logger ?? silentLogger;
  }

  /**
   * The state of every Thing on the server (every readable property), e.g. to store
   * with a captured image. Detached from a server: an empty object.
   */
  protected readServerState(): Record<string, Record<string, unknown>> {
    return this[HOST]?.readAllThings() ?? {};
  }

  /**
   * Emit a declared event: the data is validated against the event's schema (an
   * InvalidInputError to the caller when it breaks it) and delivered to subscribers.
   * A `ThingEvent` field's `emit(data)` does the same, typed.
   */
  protected emit(name: string, data?: unknown): void {
    const declaration = affordancesOf(this.constructor as ThingClass).get(name);
    if (declaration?.kind !== "event") {
      throw new ThingDefinitionError(`'${this.name}' declares no event '${name}'`);
    }
    if (declaration.data) {
      const errors = this.#validator().check(declaration.data, data, name);
      if (errors.length > 0) {
        throw new InvalidInputError(
          `event '${this.name}/${name}' data is invalid: ${describeFieldErrors(errors)}`,
          errors,
        );
      }
    }
    for (const listener of this[EVENT_LISTENERS]) listener(name, data);
  }

  /**
   * Change part of an object-valued stored property (one key of a calibration, say).
   * Stored objects are frozen, so this is the way to edit one: it assigns a new object,
   * which observers hear and, for a `@setting`, is saved. The result is checked against
   * the property's schema first (an InvalidInputError naming the key, nothing changed).
   *
   * @example
   * ```ts
   * this.updateProperty("colourGains", { red: 2 });                   // merge keys
   * this.updateProperty("roi", (roi) => ({ ...roi, x: roi.x + 10 })); // or compute
   * ```
   */
  protected updateProperty<K extends keyof this & string>(
    member: K,
    // Keys are checked against the schema at run time: inside a class, TypeScript
    // cannot resolve `Partial<this[K]>` for a literal, so it is not typed here.
    change: Record<string, unknown> | ((current: this[K]) => this[K]),
  ): void {
    const current = this[member];
    const declaration = [...affordancesOf(this.constructor as ThingClass).values()].find(
      (d) => d.kind === "property" && d.member === member,
    );
    if (declaration?.kind !== "property" || declaration.computed) {
      throw new ThingDefinitionError(`'${member}' is no stored property of '${this.name}'`);
    }
    let next: unknown;
    if (typeof change === "function") next = change(current);
    else if (typeof current === "object" && current !== null && !Array.isArray(current)) {
      next = { ...current, ...change };
    } else {
      throw new ThingDefinitionError(
        `updateProperty('${member}', {…}) merges keys into an object; pass a function for this value`,
      );
    }
    const errors = this.#validator().check(declaration.schema, next, declaration.name);
    if (errors.length > 0) {
      throw new InvalidInputError(
        `'${this.name}/${declaration.name}' update is invalid: ${describeFieldErrors(errors)}`,
        errors,
      );
    }
    this[member] = next as this[K];
  }

  /** The server's validator; detached (unit tests), one of the Thing's own. */
  #validator(): SchemaValidator {
    if (this[HOST]) return this[HOST].validator;
    this[OWN_VALIDATOR] ??= new SchemaValidator();
    return this[OWN_VALIDATOR];
  }

  /**
   * Say that the hardware behind this Thing cannot be used now (unplugged, its process
   * died): until `markAvailable()`, invoking any of its actions is refused with 503 and
   * this reason, before an invocation exists. Properties stay readable, so clients can
   * still see why (a `connected` property, say).
   *
   * @example
   * ```ts
   * this.markUnavailable(`serial port ${this.port} is unplugged`);
   * ```
   */
  protected markUnavailable(reason: string): void {
    this[UNAVAILABLE] = reason;
  }

  /** The hardware is back: actions run again. */
  protected markAvailable(): void {
    this[UNAVAILABLE] = undefined;
  }

  /** Open hardware, start capture loops. Runs after slots are connected and before listening. */
  async start(): Promise<void> {}

  /** Release hardware. Always runs at shutdown, in reverse start order, bounded in time. */
  async stop(): Promise<void> {}

  /**
   * Tell observers that a property changed. Stored (`accessor`) properties do this on
   * every assignment; call it for computed properties whose value changed by itself.
   */
  protected notifyPropertyChanged(name: string, value: unknown): void {
    for (const listener of this[LISTENERS]) listener(name, value);
  }
}
Object.defineProperty(Thing.prototype, BRAND, { value: true });

/** True for instances of any copy of `Thing` (source and built copies may coexist). */
export function isThing(value: unknown): value is Thing {
  return typeof value === "object" && value !== null && (value as Thing)[BRAND] === true;
}

/** Why a Thing refuses actions now (see `markUnavailable`), or undefined when it takes them. */
export function unavailableReason(thing: Thing): string | undefined {
  return (thing as unknown as Record<symbol, string | undefined>)[UNAVAILABLE];
}

/** Connect a Thing to its server (the server's side of the seam). */
export function attachHost(thing: Thing, host: ThingHost): void {
  (thing as unknown as Record<symbol, ThingHost>)[HOST] = host;
}

/**
 * Listen to every property change of a Thing. Returns the function that stops listening.
 * Works without a server, so unit tests can observe a Thing directly.
 */
export function observeProperties(thing: Thing, listener: PropertyChangeListener): () => void {
  const listeners = (thing as unknown as Record<symbol, Set<PropertyChangeListener>>)[LISTENERS]!;
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Notify observers from outside the Thing (used by decorators and the runtime). */
export function emitPropertyChange(thing: Thing, name: string, value: unknown): void {
  (
    thing as unknown as { notifyPropertyChanged(n: string, v: unknown): void }
  ).notifyPropertyChanged(name, value);
}

/**
 * Listen to assignments of a stored property that left its value as it was (an equal
 * primitive): no change, so SSE observers and settings hear nothing, but clients of
 * labthings-fastapi's websocket expect a message for every assignment.
 */
export function observePropertyReassignments(
  thing: Thing,
  listener: PropertyChangeListener,
): () => void {
  const listeners = (thing as unknown as Record<symbol, Set<PropertyChangeListener>>)[
    REASSIGN_LISTENERS
  ]!;
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Tell reassignment listeners (used by the stored-property decorator). */
export function emitPropertyReassigned(thing: Thing, name: string, value: unknown): void {
  const listeners = (thing as unknown as Record<symbol, Set<PropertyChangeListener>>)[
    REASSIGN_LISTENERS
  ]!;
  for (const listener of listeners) listener(name, value);
}

/** Listen to every event a Thing emits. Returns the function that stops listening. */
export function observeEvents(thing: Thing, listener: EventListener): () => void {
  const listeners = (thing as unknown as Record<symbol, Set<EventListener>>)[EVENT_LISTENERS]!;
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Emit from outside the Thing (used by `ThingEvent`). */
export function emitEvent(thing: Thing, name: string, data: unknown): void {
  (thing as unknown as { emit(n: string, d: unknown): void }).emit(name, data);
}
