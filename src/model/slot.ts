import { ThingDefinitionError } from "../errors.js";
import type { ThingClass } from "./declarations.js";
import { declareSlot, memberName } from "./declarations.js";
import type { Thing } from "./thing.js";

export interface SlotOptions {
  /** The Thing works without it; the slot holds `undefined` when no target exists. */
  optional?: boolean;
}

/**
 * A typed reference to another Thing, filled by the server from the config: the one
 * Thing of the given class, or the one named in the config's `slots` for this Thing.
 * In unit tests, assign it directly.
 *
 * @example
 * ```ts
 * class Autofocus extends Thing {
 *   @thingSlot(SimulatedCamera) accessor camera!: SimulatedCamera;
 * }
 * ```
 */
export function thingSlot<C extends ThingClass<Thing>>(target: C, options: SlotOptions = {}) {
  return <This extends Thing, V extends InstanceType<C> | undefined>(
    field: ClassAccessorDecoratorTarget<This, V>,
    context: ClassAccessorDecoratorContext<This, V>,
  ): ClassAccessorDecoratorResult<This, V> => {
    const name = memberName(context, "@thingSlot goes on a named instance accessor");
    const optional = options.optional ?? false;
    declareSlot(context.metadata as Record<PropertyKey, unknown>, {
      name,
      member: name,
      target,
      optional,
    });
    return {
      get(this: This) {
        const value = field.get.call(this);
        if (value === undefined && !optional) {
          throw new ThingDefinitionError(
            `slot '${name}' of Thing '${this.name}' is not connected (it needs a ${target.name})`,
          );
        }
        return value;
      },
      set(this: This, value: V) {
        field.set.call(this, value);
      },
    };
  };
}
