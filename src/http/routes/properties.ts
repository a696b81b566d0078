import type { FastifyInstance } from "fastify";
import { NotAcceptableError } from "../../errors.js";
import type { ExposedThing } from "../../runtime/exposed-thing.js";
import { acceptsEventStream, type EventStreams, wantsUnnamedTwins } from "../event-stream.js";
import { guardMethods } from "../method-guard.js";
import type { RouteContext } from "../route-context.js";
import { sendJson } from "../send-json.js";

const NO_CONTENT = { 204: { description: "Written", type: "null" } };

/**
 * readproperty, writeproperty, readallproperties, writemultipleproperties (HTTP Basic
 * Profile); with `Accept: text/event-stream`, observeproperty and observeallproperties
 * (HTTP SSE Profile).
 */
export function registerPropertyRoutes(app: FastifyInstance, context: RouteContext): void {
  for (const exposed of context.registry.values())
    registerThingProperties(app, exposed, context.eventStreams);
}

function registerThingProperties(
  app: FastifyInstance,
  exposed: ExposedThing,
  streams: EventStreams,
): void {
  const base = `/${exposed.name}`;
  const tags = [exposed.name];

  app.get(
    `${base}/properties`,
    { schema: { tags, summary: "Read all properties" } },
    async (request, reply) => {
      if (!acceptsEventStream(request)) return sendJson(reply, exposed.readAllProperties());
      streams.open(request, reply, {
        label: `${exposed.name}/properties`,
        filter: (n) => n.thing === exposed.name && n.kind === "property",
        coalesce: true,
      });
    },
  );
  app.put(
    `${base}/properties`,
    {
      schema: { tags, summary: "Write several properties (all or nothing)", response: NO_CONTENT },
    },
    async (request, reply) => {
      exposed.writeMultipleProperties(request.body);
      return reply.code(204).send();
    },
  );
  guardMethods(app, `${base}/properties`, ["GET", "PUT"], `'${exposed.name}/properties'`);

  for (const property of exposed.properties.values()) {
    const url = `${base}/${property.name}`;
    const { schema, title, description } = property.declaration;
    const docs = { tags, description };
    const allowed: string[] = [];
    if (property.readable) {
      allowed.push("GET");
      app.get(
        url,
        {
          schema: { ...docs, summary: `Read ${title ?? property.name}`, response: { 200: schema } },
        },
        async (request, reply) => {
          if (!acceptsEventStream(request))
            return sendJson(reply, exposed.readProperty(property.name));
          if (!property.declaration.observable) {
            throw new NotAcceptableError(
              `property '${exposed.name}/${property.name}' is not observable`,
            );
          }
          streams.open(request, reply, {
            label: `${exposed.name}/${property.name}`,
            filter: (n) =>
              n.thing === exposed.name && n.kind === "property" && n.name === property.name,
            coalesce: true,
            unnamedTwins: wantsUnnamedTwins(request),
          });
        },
      );
    }
    if (property.writable) {
      allowed.push("PUT");
      app.put(
        url,
        {
          schema: {
            ...docs,
            summary: `Write ${title ?? property.name}`,
            body: schema,
            response: NO_CONTENT,
          },
        },
        async (request, reply) => {
          exposed.writeProperty(property.name, request.body);
          return reply.code(204).send();
        },
      );
    }
    guardMethods(app, url, allowed, `property '${exposed.name}/${property.name}'`);
  }
}
