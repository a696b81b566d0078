import type { ThingDescriptionBuilder } from "../description/thing-description.js";
import type { ThingRegistry } from "../runtime/thing-registry.js";
import type { EventStreams } from "./event-stream.js";

/** What every route module needs: the Things, their TD builders, and the API path prefix. */
export interface RouteContext {
  readonly registry: ThingRegistry;
  readonly descriptions: ReadonlyMap<string, ThingDescriptionBuilder>;
  /** `""` or a path such as `/api/v1` (no trailing slash) under which everything is served. */
  readonly prefix: string;
  /** Opens server-sent-event responses (observation, events, invocation updates). */
  readonly eventStreams: EventStreams;
}
