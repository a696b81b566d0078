/**
 * Everything observable on the server, as one numbered stream of notifications:
 * property changes, events and action-invocation updates of every Thing. Each gets a
 * server-wide increasing id, and the newest are kept in a bounded buffer so a client
 * reconnecting with `Last-Event-ID` gets what it missed.
 */
import type { ThingLogger } from "../model/logger.js";
import { observeEvents, observeProperties, observePropertyReassignments } from "../model/thing.js";
import type { Invocation } from "./invocation.js";
import type { InvocationManager } from "./invocation-manager.js";
import type { ThingRegistry } from "./thing-registry.js";

export type NotificationKind = "property" | "event" | "action";

export interface Notification {
  /** Server-wide, strictly increasing. */
  readonly id: number;
  readonly thing: string;
  readonly kind: NotificationKind;
  /** Property, event or action name. */
  readonly name: string;
  /** The new value, the event data, or the invocation (see `invocation`). */
  readonly data: unknown;
  /** For action notifications: the invocation, so subscribers can render its status. */
  readonly invocation?: Invocation;
  /**
   * A property assigned its current value again: not a change, so it has no id of its own
   * (`id` is the last one so far), is never replayed, and reaches only subscribers that
   * asked for reassignments.
   */
  readonly reassigned?: true;
}

export type NotificationFilter = (notification: Notification) => boolean;
export type NotificationSink = (notification: Notification) => void;

/** How many recent notifications are kept for `Last-Event-ID` replay. */
export const REPLAY_BUFFER_SIZE = 1024;

export class ObservationHub {
  #nextId = 1;
  readonly #buffer: Notification[] = [];
  readonly #subscribers = new Map<NotificationSink, NotificationFilter>();
  /** Subscribers that also hear reassignments (labthings-fastapi's websocket). */
  readonly #reassignSubscribers = new Map<NotificationSink, NotificationFilter>();
  readonly #unsubscribe: (() => void)[] = [];

  constructor(
    registry: ThingRegistry,
    invocations: InvocationManager,
    private readonly logger: ThingLogger,
  ) {
    for (const exposed of registry.values()) {
      const observable = new Set(
        [...exposed.properties.values()]
          .filter((p) => p.declaration.observable && p.readable)
          .map((p) => p.name),
      );
      this.#unsubscribe.push(
        observeProperties(exposed.thing, (name, value) => {
          if (observable.has(name)) this.#publish(exposed.name, "property", name, value);
        }),
        observeEvents(exposed.thing, (name, data) =>
          this.#publish(exposed.name, "event", name, data),
        ),
        observePropertyReassignments(exposed.thing, (name, value) => {
          if (observable.has(name) && this.#reassignSubscribers.size > 0) {
            this.#deliver(this.#reassignSubscribers, {
              id: this.lastId,
              thing: exposed.name,
              kind: "property",
              name,
              data: value,
              reassigned: true,
            });
          }
        }),
      );
    }
    this.#unsubscribe.push(
      invocations.onInvocationChange((invocation) =>
        this.#publish(invocation.thing, "action", invocation.action, undefined, invocation),
      ),
    );
  }

  /**
   * Deliver every future notification that passes `filter`; with `reassignments`, also
   * each assignment of a property's current value (see `Notification.reassigned`).
   * Returns the unsubscribe function.
   */
  subscribe(
    filter: NotificationFilter,
    sink: NotificationSink,
    options: { reassignments?: boolean } = {},
  ): () => void {
    this.#subscribers.set(sink, filter);
    if (options.reassignments) this.#reassignSubscribers.set(sink, filter);
    return () => {
      this.#subscribers.delete(sink);
      this.#reassignSubscribers.delete(sink);
    };
  }

  /** Buffered notifications after `lastId` that pass `filter`, oldest first. */
  replaySince(lastId: number, filter: NotificationFilter): Notification[] {
    return this.#buffer.filter((n) => n.id > lastId && filter(n));
  }

  /** The id the next notification will get minus one: "everything so far". */
  get lastId(): number {
    return this.#nextId - 1;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  dispose(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#subscribers.clear();
    this.#reassignSubscribers.clear();
  }

  #publish(
    thing: string,
    kind: NotificationKind,
    name: string,
    data: unknown,
    invocation?: Invocation,
  ): void {
    const notification: Notification = { id: this.#nextId++, thing, kind, name, data, invocation };
    if (invocation?.finished) invocation.finalNotificationId ??= notification.id;
    this.#buffer.push(notification);
    if (this.#buffer.length > REPLAY_BUFFER_SIZE) this.#buffer.shift();
    this.#deliver(this.#subscribers, notification);
  }

  #deliver(
    subscribers: Map<NotificationSink, NotificationFilter>,
    notification: Notification,
  ): void {
    for (const [sink, filter] of subscribers) {
      if (!filter(notification)) continue;
      try {
        sink(notification);
      } catch (error) {
        // One broken subscriber must not stop the others, nor the Thing that changed.
        this.logger.error(
          { err: error, thing: notification.thing, name: notification.name },
          "a subscriber failed to take a notification",
        );
      }
    }
  }
}
