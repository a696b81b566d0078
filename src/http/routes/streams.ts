import type { FastifyInstance } from "fastify";
import { UnavailableError } from "../../errors.js";
import type { ExposedStream, ExposedThing } from "../../runtime/exposed-thing.js";
import { MJPEG_CONTENT_TYPE } from "../../runtime/mjpeg-fanout.js";
import type { LongLivedRegistry } from "../long-lived-registry.js";
import { guardMethods } from "../method-guard.js";
import type { RouteContext } from "../route-context.js";
import { sendJson } from "../send-json.js";

const NO_CACHE = {
  "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
  pragma: "no-cache",
};

/** `GET /{thing}/{stream}` (MJPEG), `…/snapshot` (newest JPEG), `…/stats` (clients, drops). */
export function registerStreamRoutes(
  app: FastifyInstance,
  context: RouteContext,
  longLived: LongLivedRegistry,
): void {
  for (const exposed of context.registry.values()) {
    for (const stream of exposed.streams.values()) registerStream(app, exposed, stream, longLived);
  }
}

function registerStream(
  app: FastifyInstance,
  exposed: ExposedThing,
  { name, declaration, stream, fanout }: ExposedStream,
  longLived: LongLivedRegistry,
): void {
  const url = `/${exposed.name}/${name}`;
  const tags = [exposed.name];
  const title = declaration.title ?? name;

  app.get(
    url,
    {
      // A HEAD would never end: Node drops the body of a HEAD response but the stream goes on.
      exposeHeadRoute: false,
      schema: {
        tags,
        summary: `${title}: live MJPEG stream (multipart/x-mixed-replace)`,
        description:
          "Each part carries Content-Length, X-Timestamp (capture time, seconds) and X-Sequence. " +
          "`?advance_headers=1` writes each part's headers ahead of its JPEG, for zero display lag in Chromium.",
        querystring: {
          type: "object",
          properties: { advance_headers: { type: "string", enum: ["0", "1", "true", "false"] } },
        },
      },
    },
    (request, reply) => {
      if (fanout.full) {
        throw new UnavailableError(
          `stream '${exposed.name}/${name}' already has its maximum of ${stream.options.maxClients} clients`,
        );
      }
      longLived.assertRoomFor(request.ip);
      const query = request.query as Record<string, string | undefined>;
      const advanceHeaders = query.advance_headers === "1" || query.advance_headers === "true";
      const remoteAddress = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
      reply.hijack();
      const response = reply.raw;
      // Plain bytes, not chunked: Connection: close ends the body, as µStreamer does.
      response.useChunkedEncodingByDefault = false;
      response.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        "content-type": MJPEG_CONTENT_TYPE,
        ...NO_CACHE,
        connection: "close",
        // Reverse proxies (nginx) must not buffer a live stream.
        "x-accel-buffering": "no",
      });
      request.socket.setNoDelay(true);
      // Send the status line and headers now: Node holds them back until the first body
      // write, so before the first frame a viewer would get no response at all.
      response.flushHeaders();
      const client = fanout.attach(response, { remoteAddress, advanceHeaders });
      const unregister = longLived.register({
        kind: "mjpeg",
        label: `${exposed.name}/${name} ← ${remoteAddress}`,
        client: request.ip,
        end: () => client.end(),
        destroy: () => client.destroy(),
      });
      response.once("close", () => {
        fanout.detach(client);
        unregister();
      });
    },
  );
  guardMethods(app, url, ["GET"], `stream '${exposed.name}/${name}'`, { headRoute: false });

  app.get(
    `${url}/snapshot`,
    { schema: { tags, summary: `${title}: newest frame as image/jpeg` } },
    async (_request, reply) => {
      const frame = stream.latestFrame;
      if (stream.interruption !== undefined) {
        reply.header("retry-after", "1");
        throw new UnavailableError(
          `stream '${exposed.name}/${name}' has no live frame: ${stream.interruption}`,
        );
      }
      if (!frame) {
        reply.header("retry-after", "1");
        throw new UnavailableError(`stream '${exposed.name}/${name}' has no frame yet`);
      }
      return reply
        .type("image/jpeg")
        .headers({
          ...NO_CACHE,
          "x-timestamp": (frame.timestamp / 1000).toFixed(6),
          "x-sequence": String(frame.sequence),
        })
        .send(frame.jpeg);
    },
  );
  guardMethods(app, `${url}/snapshot`, ["GET"], `snapshot of '${exposed.name}/${name}'`);

  app.get(
    `${url}/stats`,
    {
      schema: {
        tags,
        summary: `${title}: frames pushed and rejected, and each client's frames sent and dropped`,
      },
    },
    async (_request, reply) => sendJson(reply, stream.stats),
  );
}
