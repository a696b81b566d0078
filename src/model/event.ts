import type { Static, TSchema } from "@sinclair/typebox";
import { ThingDefinitionError } from "../errors.js";
import { declareAffordance, memberName } from "./declarations.js";
import type { Thing } from "./thing.js";
import { emitEvent } from "./thing.js";

export interface EventOptions<S extends TSchema | undefined> {
  /** JSON Schema of the data each event carries (validated when emitted). */
  data?: S;
  /** Wire name; defaults to the field name. */
  name?: string;
  title?: string;
  description?: string;
}

/**
 * An event source on a Thing. `emit(data)` validates the data against the declared
 * schema and delivers it to every subscriber (SSE, websockets, in-process observers).
 *
 * @example
 * ```ts
 * @event({ data: Type.Object({ celsius: Type.Number() }) })
 * readonly overheated = new ThingEvent<{ celsius: number }>();
 * …
 * this.overheated.emit({ celsius: 81.5 });
 * ```
 */
export class ThingEvent<T = undefined> {
  #emit: ((data: T) => void) | undefined;

  /** Validate and deliver. Throws InvalidInputError when the data breaks the schema. */
  emit(...[data]: T extends undefined ? [] | [undefined] : [T]): void {
    if (!this.#emit)
      throw new ThingDefinitionError("this ThingEvent is not declared with @event on a Thing");
    this.#emit(data as T);
  }

  /** Connects the field to its Thing (done by the decorator). */
  bind(emit: (data: T) => void): this {
    this.#emit = emit;
    return this;
  }
}

type DataOf<S> = S extends TSchema ? Static<S> : undefined;

/** Declare an event field. It appears in the TD's `events` with an SSE form. */
export function event<S extends TSchema | undefined = undefined>(options: EventOptions<S> = {}) {
  return <This extends Thing>(
    _value: undefined,
    context: ClassFieldDecoratorContext<This, ThingEvent<DataOf<S>>>,
  ): ((initial: ThingEvent<DataOf<S>>) => ThingEvent<DataOf<S>>) => {
    const member = memberName(context, "@event goes on a named instance field");
    const name = options.name ?? member;
    declareAffordance(context.metadata as Record<PropertyKey, unknown>, {
      kind: "event",
      name,
      member,
      data: options.data,
      title: options.title,
      description: options.description,
    });
    return function (this: This, initial) {
      return initial.bind((data) => emitEvent(this, name, data));
    };
  };
}
