/**
 * One event stream per Thing for all its property changes (the TD's observeallproperties
 * form) and one for all its events (subscribeallevents). A browser opens at most six
 * HTTP/1.1 connections to a server, and every event stream and live image holds one for
 * good: one per property would leave none for the buttons. Without such a form (another
 * server's Thing), each affordance is observed on its own.
 */
import { selectForm } from "../client/form-selection.js";
import { HttpRequester } from "../client/http-requester.js";
import { readEventStream } from "../client/sse-reader.js";
import type { ThingClient } from "../client/thing-client.js";
import type { FetchFunction } from "./access-tokens.js";

/** One message of a Thing-wide feed: the affordance it is about, and its data. */
export interface FeedMessage {
  name: string;
  data: unknown;
}

export type FeedKind = "properties" | "events";

const FEED_OPS: Record<FeedKind, string> = {
  properties: "observeallproperties",
  events: "subscribeallevents",
};

/**
 * Follow every observable property (or every event) of `client`'s Thing until `signal`
 * aborts; `onOpen` runs each time the feed is (re)connected, e.g. to read current values.
 */
export async function followThing(
  client: ThingClient,
  kind: FeedKind,
  fetch: FetchFunction,
  options: {
    signal: AbortSignal;
    onOpen?: () => void;
    onMessage: (message: FeedMessage) => void;
    onError: (error: unknown) => void;
  },
): Promise<void> {
  const td = client.description;
  const names =
    kind === "properties"
      ? Object.entries(td.properties)
          .filter(([, p]) => p.observable === true)
          .map(([name]) => name)
      : Object.keys(td.events);
  if (names.length === 0) return;
  const form = selectForm(td.forms, FEED_OPS[kind], "thing", client.base);
  if (form) {
    const requester = new HttpRequester(fetch, undefined);
    try {
      for await (const message of readEventStream(requester, form.url, {
        method: form.method,
        signal: options.signal,
        onOpen: options.onOpen,
      })) {
        if (!names.includes(message.event)) continue;
        options.onMessage({ name: message.event, data: JSON.parse(message.data) });
      }
    } catch (error) {
      if (!options.signal.aborted) options.onError(error);
    }
    return;
  }
  options.onOpen?.();
  await Promise.all(
    names.map(async (name) => {
      const iterate =
        kind === "properties"
          ? client.observeProperty(name, { signal: options.signal })
          : client.subscribeEvent(name, { signal: options.signal });
      try {
        for await (const data of iterate) options.onMessage({ name, data });
      } catch (error) {
        if (!options.signal.aborted) options.onError(error);
      }
    }),
  );
}
