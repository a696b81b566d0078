/**
 * One event stream per Thing for all its property changes and one for all its events:
 * ThingClient's observeAllProperties and subscribeAllEvents, which use the TD's
 * Thing-wide forms. A browser opens at most six HTTP/1.1 connections to a server, and
 * every event stream and live image holds one for good: one per property would leave
 * none for the buttons. (Without such a form, another server's Thing, the client falls
 * back to one stream per affordance.)
 */
import type { ThingClient } from "../client/thing-client.js";

/** One message of a Thing-wide feed: the affordance it is about, and its data. */
export interface FeedMessage {
  name: string;
  data: unknown;
}

export type FeedKind = "properties" | "events";

/**
 * Follow every observable property (or every event) of `client`'s Thing until `signal`
 * aborts; `onOpen` runs each time the feed is (re)connected, e.g. to read current values.
 * A Thing with none to follow opens no stream.
 *
 * @example
 * ```ts
 * void followThing(client, "events", {
 *   signal,
 *   onMessage: ({ name, data }) => feed.add(name, data),
 *   onError: (error) => show(error),
 * });
 * ```
 */
export async function followThing(
  client: ThingClient,
  kind: FeedKind,
  options: {
    signal: AbortSignal;
    onOpen?: () => void;
    onMessage: (message: FeedMessage) => void;
    onError: (error: unknown) => void;
  },
): Promise<void> {
  const td = client.description;
  const anything =
    kind === "properties"
      ? Object.values(td.properties).some((property) => property.observable === true)
      : Object.keys(td.events).length > 0;
  if (!anything) return;
  const feedOptions = { signal: options.signal, onOpen: options.onOpen };
  try {
    if (kind === "properties") {
      for await (const { name, value } of client.observeAllProperties(feedOptions)) {
        options.onMessage({ name, data: value });
      }
    } else {
      for await (const { name, data } of client.subscribeAllEvents(feedOptions)) {
        options.onMessage({ name, data });
      }
    }
  } catch (error) {
    if (!options.signal.aborted) options.onError(error);
  }
}
