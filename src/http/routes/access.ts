import type { FastifyInstance } from "fastify";
import {
  ACCESS_ROLES,
  type AccessRole,
  type BearerAuthentication,
  ROLE_ALLOWS,
} from "../authentication.js";
import { guardMethods } from "../method-guard.js";
import { sendJson } from "../send-json.js";

/** What `GET /access/` answers: how the server authenticates, and what this request's token may do. */
export interface AccessReport {
  /** `bearer` when the server wants a token, `none` when anyone may do everything. */
  authentication: "bearer" | "none";
  /** The role of the token this request carried (`operator` without authentication). */
  role: AccessRole;
  /** What the role allows, in words. */
  allows: string;
  /** Every role and what it allows. */
  roles: Record<AccessRole, string>;
}

/**
 * `GET /access/`: the role of the caller's token, so a page can leave out the controls a
 * viewer cannot use. Needs a valid token like any other resource (a 401 is how a page
 * learns it must ask for one).
 */
export function registerAccessRoute(
  app: FastifyInstance,
  auth: BearerAuthentication | undefined,
): void {
  app.get(
    "/access/",
    { schema: { tags: ["server"], summary: "The role of the caller's token and what it allows" } },
    async (request, reply) => {
      const role: AccessRole = request.accessRole ?? "operator";
      const report: AccessReport = {
        authentication: auth ? "bearer" : "none",
        role,
        allows: ROLE_ALLOWS[role],
        roles: Object.fromEntries(ACCESS_ROLES.map((r) => [r, ROLE_ALLOWS[r]])) as Record<
          AccessRole,
          string
        >,
      };
      return sendJson(reply, report);
    },
  );
  guardMethods(app, "/access/", ["GET"], "/access/");
}
