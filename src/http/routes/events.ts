import type { FastifyInstance } from "fastify";
import { NotAcceptableError } from "../../errors.js";
import { acceptsEventStream, wantsUnnamedTwins } from "../event-stream.js";
import { guardMethods } from "../method-guard.js";
import type { RouteContext } from "../route-context.js";

/** subscribeevent (`GET /{thing}/{event}`) and subscribeallevents (`GET /{thing}/events`), SSE only. */
export function registerEventRoutes(app: FastifyInstance, context: RouteContext): void {
  const streams = context.eventStreams;
  for (const exposed of context.registry.values()) {
    const tags = [exposed.name];
    const sseOnly = (what: string) =>
      new NotAcceptableError(
        `${what} is an event stream: request it with 'Accept: text/event-stream'`,
      );

    for (const event of exposed.events.values()) {
      const url = `/${exposed.name}/${event.name}`;
      app.get(
        url,
        {
          schema: {
            tags,
            summary: `Subscribe to ${event.title ?? event.name} (server-sent events)`,
            description: event.description,
          },
        },
        async (request, reply) => {
          if (!acceptsEventStream(request)) throw sseOnly(`event '${exposed.name}/${event.name}'`);
          streams.open(request, reply, {
            label: `${exposed.name}/${event.name}`,
            filter: (n) => n.thing === exposed.name && n.kind === "event" && n.name === event.name,
            unnamedTwins: wantsUnnamedTwins(request),
          });
        },
      );
      guardMethods(app, url, ["GET"], `event '${exposed.name}/${event.name}'`);
    }

    app.get(
      `/${exposed.name}/events`,
      { schema: { tags, summary: "Subscribe to every event (server-sent events)" } },
      async (request, reply) => {
        if (!acceptsEventStream(request)) throw sseOnly(`'${exposed.name}/events'`);
        streams.open(request, reply, {
          label: `${exposed.name}/events`,
          filter: (n) => n.thing === exposed.name && n.kind === "event",
        });
      },
    );
    guardMethods(app, `/${exposed.name}/events`, ["GET"], `'${exposed.name}/events'`);
  }
}
