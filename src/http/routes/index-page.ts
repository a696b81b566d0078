/**
 * `GET /`: the dashboard. The page itself is a shell that holds no data (it stays public
 * when authentication is on); its scripts — the compiled `src/dashboard/` and
 * `src/client/` modules — are served read-only under `/_dashboard/` from an allowlist
 * made by listing the two compiled folders, so no request path ever reaches the disk.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { FLEET_CSS } from "../../dashboard/fleet-shell.js";
import { DASHBOARD_ASSET_PREFIX, dashboardPage } from "../../dashboard/shell.js";
import { DASHBOARD_CSS } from "../../dashboard/styles.js";
import { NotFoundError } from "../../errors.js";
import { guardMethods } from "../method-guard.js";
import type { RouteContext } from "../route-context.js";

/** The compiled `src/` folder: this module's own when built, `dist/src/` when run from source. */
const COMPILED_SRC = import.meta.url.endsWith(".ts")
  ? new URL("../../../dist/src/", import.meta.url)
  : new URL("../../", import.meta.url);
/** The folders whose ES modules the browser loads, by their URL segment. */
const ASSET_FOLDERS = ["dashboard", "client"] as const;
/** Only compiled modules: no declarations, maps or anything else that lands in dist/. */
const MODULE_FILE = /^[a-z0-9][a-z0-9-]*\.js$/;

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

function asset(body: Buffer | string, contentType: string): Asset {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const hash = createHash("sha256").update(bytes).digest("base64url").slice(0, 22);
  return { body: bytes, contentType, etag: `"${hash}"` };
}

/**
 * Every servable asset by URL path below the prefix, read once. An unbuilt folder is
 * listed as empty and looked at again on the next request (tests may build after import).
 */
class DashboardAssets {
  readonly #stylesheet = asset(DASHBOARD_CSS, "text/css; charset=utf-8");
  readonly #fleetStylesheet = asset(FLEET_CSS, "text/css; charset=utf-8");
  #modules: Map<string, Asset> | undefined;

  get(path: string): Asset | undefined {
    if (path === "dashboard.css") return this.#stylesheet;
    if (path === "fleet.css") return this.#fleetStylesheet;
    this.#modules ??= this.#load();
    const found = this.#modules.get(path);
    if (!found && this.#modules.size === 0) this.#modules = undefined;
    return found;
  }

  get built(): boolean {
    return this.get("dashboard/main.js") !== undefined;
  }

  #load(): Map<string, Asset> {
    const modules = new Map<string, Asset>();
    for (const folder of ASSET_FOLDERS) {
      const directory = new URL(`${folder}/`, COMPILED_SRC);
      let names: string[];
      try {
        names = readdirSync(directory);
      } catch {
        continue; // not built (yet)
      }
      for (const name of names.filter((n) => MODULE_FILE.test(n))) {
        const body = readFileSync(fileURLToPath(new URL(name, directory)));
        modules.set(`${folder}/${name}`, asset(body, "text/javascript; charset=utf-8"));
      }
    }
    return modules;
  }
}

/** Answer with `asset`, or 304 when the browser's copy is current (it always revalidates). */
function sendAsset(request: FastifyRequest, reply: FastifyReply, found: Asset): FastifyReply {
  reply
    .header("cache-control", "no-cache")
    .header("etag", found.etag)
    .header("x-content-type-options", "nosniff");
  if (request.headers["if-none-match"] === found.etag) return reply.code(304).send();
  return reply.type(found.contentType).send(found.body);
}

/**
 * The page may talk to other servers' Things (`?td=`), so fetches and images may go
 * anywhere; scripts and styles come only from this server, and nothing may frame it.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src * blob: data:",
  "connect-src *",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

/** `GET /` (the dashboard shell) and `GET /_dashboard/…` (its stylesheet and modules). */
export function registerIndexPage(app: FastifyInstance, context: RouteContext): void {
  const assets = new DashboardAssets();
  // Public when authentication is on: the shell and its scripts hold no data.
  const options = { schema: { hide: true }, config: { public: true } };
  app.get("/", options, async (_request, reply) => {
    reply
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("content-security-policy", CONTENT_SECURITY_POLICY)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer");
    return dashboardPage({ prefix: context.prefix, built: assets.built });
  });

  const route = `${DASHBOARD_ASSET_PREFIX}/*`;
  app.get(route, options, async (request, reply) => {
    const path = (request.params as { "*": string })["*"];
    const found = assets.get(path);
    if (!found) throw new NotFoundError(`the dashboard has no file '${path}'`);
    return sendAsset(request, reply, found);
  });
  guardMethods(app, route, ["GET"], "the dashboard's files");
}
