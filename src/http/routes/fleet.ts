/**
 * The fleet page (`GET /_fleet/`) and what it reads (`GET /_fleet/servers`): this server
 * and every other one the FleetSurvey knows (DNS-SD, the configured directory, the config's
 * list), each with its Things. The page is public (it holds no data); the listing needs a
 * token when authentication is on, as this server's own Things' status does elsewhere, and
 * because each request may make the server probe the servers it lists.
 */
import type { FastifyInstance } from "fastify";
import { fleetPage } from "../../dashboard/fleet-shell.js";
import type { FleetServer, FleetSurvey, FleetThing } from "../../discovery/fleet-survey.js";
import { guardMethods } from "../method-guard.js";
import { absoluteUrl } from "../request-url.js";
import type { RouteContext } from "../route-context.js";

const FLEET_PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Thumbnails come from every server of the fleet.
  "img-src * data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

export function registerFleetRoutes(
  app: FastifyInstance,
  fleet: () => FleetSurvey | undefined,
  context: RouteContext,
): void {
  const { prefix, registry, descriptions } = context;
  const options = { schema: { hide: true }, config: { public: true } };
  app.get("/_fleet/", options, async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("content-security-policy", FLEET_PAGE_POLICY)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .send(fleetPage({ prefix })),
  );
  guardMethods(app, "/_fleet/", ["GET"], "the fleet page");

  app.get(
    "/_fleet/servers",
    {
      schema: {
        tags: ["server"],
        summary:
          "This server and the others found (DNS-SD, TD directory, config), with their Things",
      },
    },
    async (request) => {
      const root = absoluteUrl(request, `${prefix}/`);
      const things: FleetThing[] = [...registry.values()].map((exposed) => {
        const td = `${root}${exposed.name}/`;
        const description = descriptions.get(exposed.name)!.describe(td);
        return {
          name: exposed.name,
          title: exposed.title,
          td,
          status: "ok",
          snapshots: [...exposed.streams.keys()].map((stream) => `${td}${stream}/snapshot`),
          needsToken: description.security.includes("bearer_sc"),
        };
      });
      for (const [name, reason] of registry.failed) {
        things.push({
          name,
          title: name,
          td: `${root}${name}/`,
          status: "failed",
          detail: reason,
          snapshots: [],
          needsToken: false,
        });
      }
      const self: FleetServer = {
        url: root,
        title: "This server",
        dashboard: root,
        sources: [],
        online: true,
        things,
        checkedAt: new Date().toISOString(),
      };
      return { self, servers: (await fleet()?.survey()) ?? [] };
    },
  );
  guardMethods(app, "/_fleet/servers", ["GET"], "the fleet listing");
}
