import type { Static, TSchema } from "@sinclair/typebox";
import { ThingDefinitionError } from "../errors.js";
import { declareAffordance, memberName } from "./declarations.js";
import type { Thing } from "./thing.js";
import { emitPropertyChange, emitPropertyReassigned } from "./thing.js";

export interface PropertyOptions<S extends TSchema> {
  /** JSON Schema of the value (build it with `Type`); it types the member too. */
  schema: S;
  /** Wire name (URL segment, TD key); defaults to the member name. */
  name?: string;
  title?: string;
  description?: string;
  /** Clients may read but not write it. Writes from the Thing's own code still work. */
  readOnly?: boolean;
  /** Clients may write but not read it (e.g. a password). */
  writeOnly?: boolean;
  /**
   * Whether clients may observe changes (TD `observable`). Default: true for stored
   * (`accessor`) properties, false for getters, whose Thing must then call
   * `notifyPropertyChanged` itself.
   */
  observable?: boolean;
  /** A network write fails with 409 while an action holding this lock runs (e.g. `"stage"`). */
  lock?: string;
}

/** The decorator `@property` returns: for an `accessor` field or for a getter. */
export interface PropertyDecorator<V> {
  <This extends Thing>(
    target: ClassAccessorDecoratorTarget<This, V>,
    context: ClassAccessorDecoratorContext<This, V>,
  ): ClassAccessorDecoratorResult<This, V>;
  <This extends Thing>(
    target: (this: This) => V,
    context: ClassGetterDecoratorContext<This, V>,
  ): void;
}

/**
 * Declare a property. On an `accessor` field the value is stored and every assignment
 * notifies observers; on a getter it is computed (writable when a setter exists).
 * The schema types the member: a field whose type does not match is a compile error.
 *
 * @example
 * ```ts
 * @property({ schema: Type.Number({ minimum: 1, maximum: 16 }), title: "Analogue gain" })
 * accessor gain = 1;
 *
 * @property({ schema: Type.Number(), readOnly: true })
 * get temperature() { return this.sensor.read(); }
 * ```
 */
export function property<S extends TSchema>(
  options: PropertyOptions<S>,
): PropertyDecorator<Static<S>> {
  return declareProperty(options, false);
}

/**
 * Declare a setting: a stored property persisted per Thing under the settings directory,
 * loaded before `start()` and saved (atomically, debounced) on every change.
 *
 * @example
 * ```ts
 * @setting({ schema: Type.Number({ minimum: 1, maximum: 20000 }) })
 * accessor speed = 2000;
 * ```
 */
export function setting<S extends TSchema>(
  options: PropertyOptions<S>,
): PropertyDecorator<Static<S>> {
  return declareProperty(options, true);
}

function declareProperty<S extends TSchema>(
  options: PropertyOptions<S>,
  persisted: boolean,
): PropertyDecorator<Static<S>> {
  if (options.readOnly && options.writeOnly) {
    throw new ThingDefinitionError("a property cannot be both readOnly and writeOnly");
  }
  return ((
    target: unknown,
    context: ClassAccessorDecoratorContext | ClassGetterDecoratorContext,
  ) => {
    const member = memberName(context, "@property goes on a named instance accessor or getter");
    const name = options.name ?? member;
    declareAffordance(context.metadata as Record<PropertyKey, unknown>, {
      kind: "property",
      name,
      member,
      schema: options.schema,
      title: options.title,
      description: options.description ?? options.schema.description,
      readOnly: options.readOnly ?? false,
      writeOnly: options.writeOnly ?? false,
      // A computed value changes without an assignment to announce it: observable only
      // when declared so (the Thing then calls notifyPropertyChanged).
      observable: options.observable ?? context.kind !== "getter",
      computed: context.kind === "getter",
      lock: options.lock,
      setting: persisted,
    });
    if (context.kind === "getter") {
      if (persisted)
        throw new ThingDefinitionError(
          `@setting '${name}' must be a stored accessor, not a getter`,
        );
      return;
    }
    const field = target as ClassAccessorDecoratorTarget<Thing, unknown>;
    return {
      init: frozenCopy,
      get(this: Thing) {
        return field.get.call(this);
      },
      set(this: Thing, assigned: unknown) {
        const previous = field.get.call(this);
        const value = frozenCopy(assigned);
        field.set.call(this, value);
        // Objects always notify (they may have been rebuilt); equal primitives are only
        // a reassignment (labthings-fastapi's websocket reports those too).
        if (typeof value === "object" || !Object.is(previous, value)) {
          emitPropertyChange(this, name, value);
        } else {
          emitPropertyReassigned(this, name, value);
        }
      },
    } satisfies ClassAccessorDecoratorResult<Thing, unknown>;
  }) as PropertyDecorator<Static<S>>;
}

/**
 * Stored object values are deep-frozen copies: a change made in place would reach no
 * observer and no settings file, so it throws instead (use `updateProperty`).
 */
function frozenCopy<V>(value: V): V {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  return deepFreeze(structuredClone(value));
}

function deepFreeze<V>(value: V): V {
  // Typed arrays cannot be frozen; property values are JSON, but do not fail on one.
  if (typeof value === "object" && value !== null && !ArrayBuffer.isView(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
