import type { FieldError } from "../errors.js";
import {
  InvalidInputError,
  LabThingsError,
  LockBusyError,
  MethodNotAllowedError,
  NotFoundError,
  ThingDefinitionError,
  ThingFailureError,
} from "../errors.js";
import type {
  ActionDeclaration,
  EventDeclaration,
  PropertyDeclaration,
  StreamDeclaration,
  ThingClass,
} from "../model/declarations.js";
import { affordancesOf } from "../model/declarations.js";
import type { ThingLogger } from "../model/logger.js";
import { silentLogger } from "../model/logger.js";
import { MjpegStream } from "../model/mjpeg-stream.js";
import type { SchemaValidator } from "../model/schema-validator.js";
import { describeFieldErrors } from "../model/schema-validator.js";
import type { Thing } from "../model/thing.js";
import { emitPropertyChange } from "../model/thing.js";
import { LockManager } from "./lock-manager.js";
import { MjpegFanout } from "./mjpeg-fanout.js";
import { errorMessage } from "./settle.js";

/** A property as clients see it: its declaration plus what they may do with it. */
export interface ExposedProperty {
  readonly name: string;
  readonly declaration: PropertyDeclaration;
  readonly readable: boolean;
  readonly writable: boolean;
}

/** An MJPEG stream as served: the Thing's stream and the fan-out to its clients. */
export interface ExposedStream {
  readonly name: string;
  readonly declaration: StreamDeclaration;
  readonly stream: MjpegStream;
  readonly fanout: MjpegFanout;
}

/**
 * A Thing as the network sees it: its affordances by wire name, and the operations of
 * the WoT Profile on them, each validated. Transport-independent: HTTP, websockets and
 * tests all go through here.
 */
export class ExposedThing {
  readonly properties: ReadonlyMap<string, ExposedProperty>;
  readonly streams: ReadonlyMap<string, ExposedStream>;
  readonly actions: ReadonlyMap<string, ActionDeclaration>;
  readonly events: ReadonlyMap<string, EventDeclaration>;

  constructor(
    readonly name: string,
    readonly thing: Thing,
    private readonly validator: SchemaValidator,
    logger: ThingLogger = silentLogger,
    private readonly locks: LockManager = new LockManager(),
  ) {
    const properties = new Map<string, ExposedProperty>();
    const streams = new Map<string, ExposedStream>();
    const actions = new Map<string, ActionDeclaration>();
    const events = new Map<string, EventDeclaration>();
    for (const declaration of affordancesOf(thing.constructor as ThingClass).values()) {
      if (declaration.kind === "stream") {
        const stream = (thing as unknown as Record<string, unknown>)[declaration.member];
        if (!(stream instanceof MjpegStream)) {
          throw new ThingDefinitionError(
            `'${name}.${declaration.member}' is declared @mjpegStream but holds no MjpegStream`,
          );
        }
        const fanout = new MjpegFanout(stream, `${name}/${declaration.name}`, logger);
        streams.set(declaration.name, { name: declaration.name, declaration, stream, fanout });
        continue;
      }
      if (declaration.kind === "event") {
        if (declaration.data) validator.prepare(declaration.data);
        events.set(declaration.name, declaration);
        continue;
      }
      if (declaration.kind === "action") {
        if (declaration.input) validator.prepare(declaration.input);
        if (declaration.output) validator.prepare(declaration.output);
        actions.set(declaration.name, declaration);
        continue;
      }
      validator.prepare(declaration.schema);
      const settable = !declaration.computed || hasSetter(thing, declaration.member);
      properties.set(declaration.name, {
        name: declaration.name,
        declaration,
        readable: !declaration.writeOnly,
        writable: !declaration.readOnly && settable,
      });
    }
    this.properties = properties;
    this.streams = streams;
    this.actions = actions;
    this.events = events;
  }

  event(name: string): EventDeclaration {
    const event = this.events.get(name);
    if (!event) throw new NotFoundError(`Thing '${this.name}' has no event '${name}'`);
    return event;
  }

  action(name: string): ActionDeclaration {
    const action = this.actions.get(name);
    if (!action) throw new NotFoundError(`Thing '${this.name}' has no action '${name}'`);
    return action;
  }

  /** Make a property read-only over the network (a setting locked by the config). */
  lockProperty(name: string): void {
    const property = this.property(name);
    (this.properties as Map<string, ExposedProperty>).set(name, { ...property, writable: false });
  }

  stream(name: string): ExposedStream {
    const stream = this.streams.get(name);
    if (!stream) throw new NotFoundError(`Thing '${this.name}' has no stream '${name}'`);
    return stream;
  }

  get title(): string {
    const cls = this.thing.constructor as { title?: string };
    return cls.title ?? this.thing.constructor.name;
  }

  get description(): string | undefined {
    return (this.thing.constructor as { description?: string }).description;
  }

  property(name: string): ExposedProperty {
    const property = this.properties.get(name);
    if (!property) throw new NotFoundError(`Thing '${this.name}' has no property '${name}'`);
    return property;
  }

  /** readproperty */
  readProperty(name: string): unknown {
    const property = this.property(name);
    if (!property.readable) {
      throw new MethodNotAllowedError(`property '${name}' of '${this.name}' is write-only`, [
        "PUT",
      ]);
    }
    return this.#get(property);
  }

  /** writeproperty: validated first; on any error nothing changes. */
  writeProperty(name: string, value: unknown): void {
    const property = this.property(name);
    if (!property.writable) {
      throw new MethodNotAllowedError(`property '${name}' of '${this.name}' is read-only`, ["GET"]);
    }
    const errors = this.validator.check(property.declaration.schema, value, name);
    if (errors.length > 0) throw invalidValue(this.name, errors);
    this.#checkLock(property);
    this.#set(property, value);
  }

  /** A property write that shares a lock with a running action fails fast (409). */
  #checkLock(property: ExposedProperty): void {
    const lock = property.declaration.lock;
    const holder = lock ? this.locks.holder(lock) : undefined;
    if (lock && holder) {
      throw new LockBusyError(
        `property '${this.name}/${property.name}' cannot be written while ${holder} holds lock '${lock}'`,
      );
    }
  }

  /** readallproperties: every readable property in one object. */
  readAllProperties(): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    for (const property of this.properties.values()) {
      if (property.readable) values[property.name] = this.#get(property);
    }
    return values;
  }

  /** writemultipleproperties: all-or-nothing. Every value is checked before any is set. */
  writeMultipleProperties(values: unknown): void {
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      throw new InvalidInputError("expected a JSON object of property names and values", [
        { field: "/", rule: "type", message: "must be object" },
      ]);
    }
    const errors: FieldError[] = [];
    const updates: [ExposedProperty, unknown][] = [];
    for (const [name, value] of Object.entries(values)) {
      const property = this.properties.get(name);
      if (!property) {
        errors.push({
          field: `/${name}`,
          rule: "unknownProperty",
          message: "is not a property of this Thing",
        });
      } else if (!property.writable) {
        errors.push({ field: `/${name}`, rule: "readOnly", message: "is read-only" });
      } else {
        errors.push(...this.validator.check(property.declaration.schema, value, name));
        updates.push([property, value]);
      }
    }
    if (errors.length > 0) throw invalidValue(this.name, errors);
    for (const [property] of updates) this.#checkLock(property);
    // A computed setter may still throw: put back what was already set, then rethrow.
    const applied: [ExposedProperty, unknown][] = [];
    try {
      for (const [property, value] of updates) {
        const previous = property.readable ? this.#get(property) : undefined;
        this.#set(property, value);
        applied.push([property, previous]);
      }
    } catch (error) {
      for (const [property, previous] of applied.reverse()) {
        if (property.readable) this.#set(property, previous);
      }
      throw error;
    }
  }

  #get(property: ExposedProperty): unknown {
    try {
      return (this.thing as unknown as Record<string, unknown>)[property.declaration.member];
    } catch (error) {
      throw this.#failure("reading", property, error);
    }
  }

  #set(property: ExposedProperty, value: unknown): void {
    try {
      (this.thing as unknown as Record<string, unknown>)[property.declaration.member] = value;
    } catch (error) {
      throw this.#failure("writing", property, error);
    }
    // Stored properties notify from their accessor; a computed one is announced here.
    if (property.declaration.computed && property.readable) {
      emitPropertyChange(this.thing, property.name, this.#get(property));
    }
  }
  /** A getter or setter threw: name the property (a LabThingsError keeps its status). */
  #failure(doing: string, property: ExposedProperty, error: unknown): LabThingsError {
    if (error instanceof LabThingsError) return error;
    return new ThingFailureError(
      `${doing} '${this.name}/${property.name}' failed: ${errorMessage(error)}`,
      { cause: error },
    );
  }
}

function invalidValue(thing: string, errors: FieldError[]): InvalidInputError {
  return new InvalidInputError(
    `invalid value for Thing '${thing}': ${describeFieldErrors(errors)}`,
    errors,
  );
}

function hasSetter(thing: Thing, member: string): boolean {
  for (let proto = Object.getPrototypeOf(thing); proto; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, member);
    if (descriptor) return typeof descriptor.set === "function";
  }
  return false;
}
