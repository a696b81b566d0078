/**
 * Refuse state-changing requests that a browser sends on behalf of another site's page.
 * With CORS closed a page elsewhere cannot read our answers, but a "simple" request (a
 * body-less POST, `fetch(url, { method: "POST", mode: "no-cors" })`, a form) still
 * reaches the route: any page a lab member visits could start `autofocus/run` on a
 * server without a token. Browsers say where a request comes from (`Sec-Fetch-Site`,
 * else `Origin`); clients that are not browsers (curl, Python, node-wot in Node) send
 * neither and are untouched. Origins listed in `cors` (or all, with `cors: true`) are
 * trusted, as Go's `http.CrossOriginProtection` does.
 *
 * A websocket handshake is a GET, but it is not "safe" here: browsers let any page open a
 * websocket anywhere (the same-origin policy does not cover them), so without this check
 * another site's page could read every property through `/{thing}/ws` while CORS keeps
 * it from reading the same values with `fetch`. Handshakes are held to the same rule.
 */
import type { FastifyRequest } from "fastify";
import { CrossOriginError } from "../errors.js";
import { isUpgradeRequest } from "./routes/websocket.js";

/** Methods that change nothing (RFC 9110 §9.2.1). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export class CrossOriginProtection {
  constructor(
    /** The `cors` option: `true` trusts every origin, a list those origins. */
    private readonly trusted: boolean | readonly string[],
  ) {}

  /** Throws CrossOriginError for an unsafe request from another site's page. */
  check(request: FastifyRequest): void {
    const websocket = isUpgradeRequest(request.raw);
    if ((SAFE_METHODS.has(request.method) && !websocket) || this.trusted === true) return;
    const origin = request.headers.origin;
    if (origin !== undefined && this.trusted !== false && this.trusted.includes(origin)) return;
    const site = request.headers["sec-fetch-site"];
    if (site !== undefined) {
      // `none`: typed in the address bar or a bookmark, not another page.
      if (site === "same-origin" || site === "none") return;
    } else if (origin === undefined || sameHost(origin, request.headers.host)) {
      return;
    }
    const what = websocket ? "A websocket to" : request.method;
    throw new CrossOriginError(
      `${what} ${request.url.split("?", 1)[0]} comes from a page of another site` +
        ` (${origin ?? site}): list that origin in the 'cors' setting to let its pages` +
        (websocket ? " observe here" : " act here"),
    );
  }
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
