/**
 * The server: Things behind the WoT HTTP Basic and SSE Profiles. Its whole lifecycle is here:
 *
 * start: Things constructed and slots connected (ThingRegistry) → Things started in
 *   dependency order → routes built from their declarations → listen.
 * close: flush settings → stop accepting (503 Problem Details on open keep-alive sockets)
 *   → abort running actions → end every long-lived response (MJPEG closing delimiter, end
 *   of SSE responses, websocket close 1001; an invocation's watchers after its final
 *   status) → cut requests whose body has not arrived after a short grace → stop Things
 *   in reverse start order, each bounded → flush settings again → close the HTTP server;
 *   a hard deadline destroys whatever is still open and the report names what hung and
 *   every setting not saved.
 * Beyond HTTP (each bounded, none delaying start): after listen, DNS-SD advertisement, TD
 * Directory registration and the MQTT binding start in the background; at close the
 * goodbyes and directory deletes run beside the steps above, and MQTT says goodbye last.
 */

import type { X509Certificate } from "node:crypto";
import { METHODS, STATUS_CODES } from "node:http";
import corsPlugin from "@fastify/cors";
import websocketPlugin from "@fastify/websocket";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { type Logger, pino } from "pino";
import { MqttBinding, type MqttOptions } from "../bindings/mqtt-binding.js";
import { COLLECTION_LINK, ServerDescription } from "../description/server-description.js";
import { ThingDescriptionBuilder } from "../description/thing-description.js";
import type { DirectoryOptions } from "../discovery/directory-registration.js";
import { FleetSurvey } from "../discovery/fleet-survey.js";
import { machineLabel, reachableOrigin } from "../discovery/network-addresses.js";
import { mdnsEnabled, NetworkPresence } from "../discovery/network-presence.js";
import {
  ConfigError,
  InvalidInputError,
  ListenError,
  NotFoundError,
  ThingLifecycleError,
  UnavailableError,
} from "../errors.js";
import { BlobStore } from "../runtime/blob-store.js";
import { InvocationManager } from "../runtime/invocation-manager.js";
import { ObservationHub } from "../runtime/observation-hub.js";
import { SettingsStore, type UnsavedSetting } from "../runtime/settings-store.js";
import { type Outcome, settleWithin } from "../runtime/settle.js";
import { resolveThingIdentities } from "../runtime/thing-identities.js";
import type { ThingEntry } from "../runtime/thing-registry.js";
import { ThingRegistry } from "../runtime/thing-registry.js";
import {
  type AccessToken,
  BEARER_SECURITY,
  BearerAuthentication,
  redactedRequest,
  redactToken,
} from "./authentication.js";
import { ConnectionTracker } from "./connection-tracker.js";
import { CrossOriginProtection } from "./cross-origin.js";
import { EventStreams } from "./event-stream.js";
import { LongLivedRegistry } from "./long-lived-registry.js";
import { registerDocsPages, registerOpenApi } from "./openapi.js";
import { handleError, problemType, sendProblem, toProblem } from "./problem-details.js";
import {
  checkJsonDepth,
  checkUrlLength,
  clientErrorHandler,
  DEFAULT_LIMITS,
  httpServerOptions,
  type RequestLimits,
} from "./request-limits.js";
import type { RouteContext } from "./route-context.js";
import { registerAccessRoute } from "./routes/access.js";
import { blobPath, markEmptyBody, registerActionRoutes } from "./routes/actions.js";
import { registerDescriptionRoutes } from "./routes/descriptions.js";
import { registerEventRoutes } from "./routes/events.js";
import { registerFleetRoutes } from "./routes/fleet.js";
import { registerIndexPage } from "./routes/index-page.js";
import { registerPropertyRoutes } from "./routes/properties.js";
import { registerSettingsStatusRoute } from "./routes/settings-status.js";
import { registerStreamRoutes } from "./routes/streams.js";
import {
  isUpgradeRequest,
  refuseStrayHandshakes,
  registerWebSocketRoutes,
} from "./routes/websocket.js";
import { registerWellKnownRoute } from "./routes/well-known.js";
import { certificateWarnings, checkTlsPair, type TlsOptions } from "./tls.js";

export interface ThingServerOptions {
  /** Interface to bind; default `127.0.0.1` (loopback only). */
  host?: string;
  /** TCP port; `0` picks a free one (see `url` after `start()`). Default 5000. */
  port?: number;
  /** Serve everything under this path, e.g. `/microscope` behind a reverse proxy. */
  apiPrefix?: string;
  /**
   * CORS: `false` (default, no CORS headers), `true` (any origin), or a list of origins.
   * Only these origins' pages may also write, invoke or cancel (docs/security.md).
   */
  cors?: boolean | string[];
  /**
   * Sizes, nesting, timeouts and the per-address stream cap (see `RequestLimits`);
   * what is not given keeps its default (1 MiB body, 8 KiB URL, 16 KiB headers,
   * JSON depth 32, 10 s for headers, 30 s for a whole request, 64 streams per address).
   */
  limits?: Partial<RequestLimits>;
  /**
   * Turn on bearer-token authentication: every route except the Thing Descriptions, API
   * docs and dashboard shell answers 401 without `Authorization: Bearer <token>` (or
   * `?access_token=` on a GET), and TDs declare the `bearer` scheme. At least 16 characters.
   * This token has the `operator` role (it may do everything).
   */
  authToken?: string;
  /**
   * More tokens, each with a role: `viewer` (reads, observation, streams, invocation
   * status, blobs) or `operator` (also writes, actions, cancel). A viewer's write or
   * invocation is 403 Problem Details naming the role needed. Beside `authToken` or alone.
   */
  authTokens?: AccessToken[];
  /**
   * Refuse to start when any Thing's `start()` fails. Default false: the failed Thing
   * (and the Things whose slots hold it) are set aside, their URLs answer 503 naming the
   * failure, and the other Things are served.
   */
  requireAllThings?: boolean;
  /** Hard deadline for `close()`; past it every socket is destroyed. Default 5000 ms. */
  shutdownTimeoutMs?: number;
  /** Believe `X-Forwarded-*` headers (behind a reverse proxy), so TDs carry the public URL. */
  trustProxy?: boolean;
  /** How long finished action invocations (and their blobs) are kept. Default 5 minutes. */
  actionRetentionMs?: number;
  /** Folder for `@setting` files (`<thing>.json`); without it settings are not persisted. */
  settingsDir?: string;
  /** Most finished invocations kept; the oldest go first. Default 1000. */
  maxRetainedInvocations?: number;
  /**
   * Serve HTTPS (and websockets as WSS) with this PEM certificate and key; TDs' `base` is
   * then `https:`. Checked at construction: a key that does not fit is a ConfigError.
   */
  tls?: TlsOptions;
  /**
   * Advertise every Thing over DNS-SD (mDNS, `_wot._tcp`). Default: on when `host` is not
   * loopback; `LABTHINGS_MDNS=off` in the environment turns it off whatever this says.
   */
  mdns?: boolean;
  /**
   * The URL others reach this server at (with any prefix), written into the TDs given to a
   * directory or an MQTT broker. Default: `http://<bound address>:<port>`, or the first
   * non-loopback address for a wildcard bind.
   */
  publicUrl?: string;
  /** Register every TD with a W3C TD Directory (renewed, deleted at shutdown). */
  directory?: DirectoryOptions;
  /** Publish through an MQTT broker (see `MqttOptions`). */
  mqtt?: MqttOptions;
  /** The fleet page: servers to list besides those found by DNS-SD and the directory. */
  fleet?: { servers?: string[] };
  logger?: Logger;
}

export interface ShutdownReport {
  /** Milliseconds from `close()` to the end of the sequence. */
  durationMs: number;
  /** Things whose `stop()` did not finish in time. */
  hungThings: string[];
  /** Things whose `stop()` threw. */
  failedThings: string[];
  /** Every setting is on disk as it is now. */
  settingsSaved: boolean;
  /** Settings whose value is not on disk (`camera.exposureTime = 20000 (camera.json: EROFS …)`): lost at exit. */
  unsavedSettings: string[];
  /** Action invocations that ignored their abort signal and were abandoned. */
  abandonedInvocations: string[];
  /** Long-lived responses (streams) open when shutdown began, all ended by the server. */
  responsesEnded: number;
  /** Labels of long-lived responses that did not close in time and were cut. */
  responsesDestroyed: string[];
  /** Requests still receiving their body after the grace, answered 503 and cut. */
  requestsCut: string[];
  /** The deadline passed and open sockets were destroyed. */
  forced: boolean;
  /** Things whose TD Directory entry could not be deleted (it expires by its TTL). */
  directoryNotDeleted: string[];
}

/** How long aborted actions get to settle at shutdown before they are abandoned. */
const ACTION_ABORT_GRACE_MS = 2000;

/** How long ended streams get to close their sockets before they are cut. */
const STREAM_END_GRACE_MS = 1000;

/** How long a request still receiving its body at shutdown gets before it is cut. */
const REQUEST_BODY_GRACE_MS = 1000;
/** How long the MQTT broker gets for the goodbye at shutdown. */
const MQTT_GOODBYE_MS = 1000;

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 5000,
  shutdownTimeoutMs: 5000,
} as const;

export class ThingServer {
  readonly registry: ThingRegistry;
  /** Every open stream (and later SSE, websocket, long poll): shutdown ends them first. */
  readonly longLived: LongLivedRegistry;
  readonly invocations: InvocationManager;
  readonly blobs = new BlobStore();
  /** `@setting` persistence: loaded before start, saved on change, flushed at close. */
  readonly settings: SettingsStore;
  readonly #entries: readonly ThingEntry[];
  /** Property changes, events and invocation updates, numbered, for SSE and websockets. */
  readonly observation: ObservationHub;
  readonly logger: Logger;
  readonly #options: ThingServerOptions;
  readonly #prefix: string;
  readonly #limits: RequestLimits;
  readonly #auth: BearerAuthentication | undefined;
  readonly #certificate: X509Certificate | undefined;
  #app: FastifyInstance | undefined;
  #url: string | undefined;
  #closing: Promise<ShutdownReport> | undefined;
  /** Open connections and their requests in progress, for shutdown. */
  readonly #connections = new ConnectionTracker();
  /** TD builders by Thing name, and the server's own TD (`/.well-known/wot`); made at start. */
  #descriptions = new Map<string, ThingDescriptionBuilder>();
  #thingIds = new Map<string, string>();
  #serverDescription: ServerDescription | undefined;
  /** DNS-SD and TD Directory: started after listen, withdrawn at close. */
  #presence: NetworkPresence | undefined;
  /** The MQTT binding, when configured. */
  readonly mqtt: MqttBinding | undefined;
  /** Other servers for the fleet page, when DNS-SD, a directory or a list gives any. */
  #fleet: FleetSurvey | undefined;

  constructor(entries: readonly ThingEntry[], options: ThingServerOptions = {}) {
    this.#options = options;
    this.logger = options.logger ?? pino({ level: "silent" });
    this.#prefix = normalisePrefix(options.apiPrefix);
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    const { headersTimeoutMs, requestTimeoutMs } = this.#limits;
    if (requestTimeoutMs > 0 && headersTimeoutMs > requestTimeoutMs) {
      // Node refuses this combination; say which setting to change.
      throw new ConfigError(
        "limits.headersTimeoutMs",
        `${headersTimeoutMs} ms is longer than limits.requestTimeoutMs (${requestTimeoutMs} ms)`,
      );
    }
    this.longLived = new LongLivedRegistry(this.#limits.streamsPerClient);
    const tokens: AccessToken[] = [
      ...(options.authToken === undefined
        ? []
        : [{ token: options.authToken, role: "operator" as const }]),
      ...(options.authTokens ?? []),
    ];
    this.#auth =
      tokens.length === 0
        ? undefined
        : // Swagger UI's routes are a plugin's: public by path; ours say `config.public`.
          new BearerAuthentication(tokens, [`${this.#prefix}/docs`]);
    this.#certificate = options.tls ? checkTlsPair(options.tls) : undefined;
    this.registry = new ThingRegistry(entries, this.logger);
    this.#entries = entries;
    this.settings = new SettingsStore(options.settingsDir, this.registry.validator, this.logger);
    this.invocations = new InvocationManager({
      validator: this.registry.validator,
      locks: this.registry.locks,
      blobs: this.blobs,
      logger: this.logger,
      blobHref: (id) => blobPath(this.#prefix, id),
      retentionMs: options.actionRetentionMs,
      maxRetained: options.maxRetainedInvocations,
      maxPending: this.#limits.pendingInvocations,
    });
    this.observation = new ObservationHub(this.registry, this.invocations, this.logger);
    if (options.mqtt) {
      this.mqtt = new MqttBinding(options.mqtt, {
        registry: this.registry,
        hub: this.observation,
        invocations: this.invocations,
        logger: this.logger.child({ binding: "mqtt" }),
      });
    }
  }

  /** The Fastify instance (after `start()`), for tests and for adding routes. */
  get app(): FastifyInstance {
    if (!this.#app) throw new Error("the server has not been started");
    return this.#app;
  }

  /** The URL others reach the server at (`publicUrl`, else made from the bind; after `start()`). */
  get publicUrl(): string {
    if (!this.#url) throw new Error("the server has not been started");
    const port = Number(new URL(this.#url).port);
    return (
      this.#options.publicUrl ??
      `${reachableOrigin(this.#options.host ?? DEFAULTS.host, port, this.#certificate ? "https" : "http")}${this.#prefix}`
    ).replace(/\/$/, "");
  }

  /** A Thing's TD with the public base (what a directory or broker is given). */
  describeForOthers(name: string): Record<string, unknown> {
    return this.#descriptions.get(name)!.describe(`${this.publicUrl}/${name}/`);
  }

  /** Base URL the server listens on, e.g. `http://127.0.0.1:5000` (after `start()`). */
  get url(): string {
    if (!this.#url) throw new Error("the server has not been started");
    return this.#url + this.#prefix;
  }

  /** Start every Thing, then listen. Resolves with the URL. */
  async start(): Promise<string> {
    const timeoutMs = this.#options.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs;
    for (const entry of this.#entries) {
      await this.settings.load(this.registry.get(entry.name), entry.settings);
    }
    await this.registry.startAll(timeoutMs, {
      continueOnFailure: !this.#options.requireAllThings,
    });
    const [firstFailed] = this.registry.failed;
    if (firstFailed && this.registry.names.length === 0) {
      // Nothing left to serve: failing loudly beats an empty server.
      throw new ThingLifecycleError(firstFailed[0], "start", firstFailed[1]);
    }
    try {
      // A signal during start-up: do not start listening after close() has run.
      if (this.#closing) throw new UnavailableError("the server was closed while starting");
      await this.#makeDescriptions();
      this.#app = await this.#buildApp();
      this.#connections.attach(this.#app.server);
      const host = this.#options.host ?? DEFAULTS.host;
      await this.#listen(this.#app, host, this.#options.port ?? DEFAULTS.port);
      const address = this.#app.server.address();
      const port = typeof address === "object" && address ? address.port : this.#options.port;
      const scheme = this.#certificate ? "https" : "http";
      this.#url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
      if (this.#certificate) {
        for (const warning of certificateWarnings(this.#certificate, host)) {
          this.logger.warn({ host }, warning);
        }
      }
      this.#startBeyondHttp(host, Number(port));
      return this.url;
    } catch (error) {
      await this.registry.stopAll(timeoutMs);
      await this.#app?.close();
      throw error;
    }
  }

  /** Listen, without Fastify's own "Server listening" line (whoever starts us says where). */
  async #listen(app: FastifyInstance, host: string, port: number): Promise<void> {
    const log = app.log as Logger;
    const level = log.level;
    log.level = level === "silent" || log.levelVal > 30 ? level : "warn";
    try {
      await app.listen({ host, port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
        throw new ListenError(host, port, code, { cause: error });
      }
      throw error;
    } finally {
      log.level = level;
    }
  }

  /** Run the shutdown sequence once; later calls get the same report. Never exits the process. */
  close(): Promise<ShutdownReport> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<ShutdownReport> {
    const started = performance.now();
    const deadline = started + (this.#options.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs);
    const remaining = () => Math.max(0, deadline - performance.now());
    const report: ShutdownReport = {
      durationMs: 0,
      hungThings: [],
      failedThings: [],
      settingsSaved: true,
      unsavedSettings: [],
      abandonedInvocations: [],
      responsesEnded: 0,
      responsesDestroyed: [],
      requestsCut: [],
      forced: false,
      directoryNotDeleted: [],
    };

    // 1. Settings first: every acknowledged change is on its way to disk before anything
    //    else can go wrong (a second signal then writes what is left, synchronously).
    const firstFlush = this.settings.flush();
    // 2. Stop accepting: the listener closes now, idle keep-alive sockets close, and
    //    requests on busy ones get 503 (onRequest hook).
    const httpClosed = this.#app ? this.#app.close() : Promise.resolve();
    //    Withdraw from the network beside the steps below: DNS-SD goodbye packets and TD
    //    Directory deletes, bounded by the deadline, awaited (at most that long) at the end.
    this.#fleet?.stop();
    const withdrawn = this.#presence?.withdraw(remaining());
    this.#connections.destroyIdle();
    // 3. Abort running actions: their signals fire now, and the actions settle (bounded)
    //    while the streams end.
    const actionsSettled = this.invocations.abortAll(Math.min(ACTION_ABORT_GRACE_MS, remaining()));
    // 4. End every long-lived response ourselves, before waiting for anything: nothing
    //    else would ever end them (the seed bug). Watchers of a running invocation end
    //    after its final status (cancelled), once its action has stopped.
    const streamsEnded = this.longLived.endAll(
      Math.min(STREAM_END_GRACE_MS, remaining()),
      (response) => response.finalMessage === undefined,
    );
    const watchersEnded = actionsSettled.then(() =>
      this.longLived.endAll(
        Math.min(STREAM_END_GRACE_MS, remaining()),
        (response) => response.finalMessage !== undefined,
      ),
    );
    // 5. A request still receiving its body gets a short grace, then a 503 and the end of
    //    its connection.
    const bodiesCut = this.#connections.cutIncompleteBodies(
      Math.min(REQUEST_BODY_GRACE_MS, remaining()),
    );
    const [ended, watchers, abandoned, cut] = await Promise.all([
      streamsEnded,
      watchersEnded,
      actionsSettled,
      bodiesCut,
    ]);
    report.responsesEnded = ended.ended + watchers.ended;
    report.responsesDestroyed = [...ended.destroyed, ...watchers.destroyed];
    report.abandonedInvocations = abandoned;
    report.requestsCut = cut;
    if (report.responsesDestroyed.length > 0) {
      this.logger.warn(
        { responses: report.responsesDestroyed },
        "long-lived responses did not close in time and were cut",
      );
    }
    if (abandoned.length > 0) {
      this.logger.error(
        { invocations: abandoned },
        "actions ignored their abort signal and were abandoned",
      );
    }
    if (cut.length > 0) {
      this.logger.warn({ requests: cut }, "requests whose body did not arrive in time were cut");
    }
    // 6. Stop every Thing in reverse start order, each bounded by what is left.
    const stopped = await this.registry.stopAll(Math.max(1, remaining()));
    report.hungThings = stopped.hung;
    report.failedThings = stopped.failed;
    // 7. Settings again: what changed since (a Thing's stop(), a request that was still
    //    arriving) and one more attempt for files whose saves failed.
    const saved = await settleWithin(
      firstFlush.then(() => this.settings.flush()),
      remaining(),
    );
    const unsaved = this.settings.unsaved();
    report.settingsSaved = saved.kind === "fulfilled" && unsaved.length === 0;
    report.unsavedSettings = unsaved.map(describeUnsaved);
    if (saved.kind !== "fulfilled") {
      this.logger.error("settings could not all be written before the shutdown deadline");
    }
    if (unsaved.length > 0) {
      this.logger.error(
        { unsaved },
        `settings NOT saved, lost when the process exits: ${report.unsavedSettings.join("; ")}`,
      );
    }
    // 8. MQTT last, so changes made by stop() reach the broker: the retained status says
    //    offline, then disconnect. A broker that is away is not waited for.
    await this.mqtt?.close(Math.min(MQTT_GOODBYE_MS, remaining()));
    // 9. Wait for in-flight requests, but never past the deadline.
    const outcome = await settleWithin(httpClosed, remaining());
    if (outcome.kind === "timeout") {
      report.forced = true;
      report.responsesDestroyed.push(...this.longLived.destroyAll());
      this.#app?.server.closeAllConnections();
      this.logger.error(
        { hungThings: report.hungThings, responses: report.responsesDestroyed },
        "shutdown deadline passed: open connections destroyed",
      );
    }
    for (const exposed of this.registry.values()) {
      for (const stream of exposed.streams.values()) stream.fanout.dispose();
    }
    if (withdrawn) {
      const outcome: Outcome = await settleWithin(
        withdrawn.then((result) => {
          report.directoryNotDeleted = result.directoryNotDeleted;
        }),
        remaining(),
      );
      if (outcome.kind !== "fulfilled") {
        report.directoryNotDeleted = this.#presence?.directoryNotDeleted ?? [];
        this.logger.warn(
          { directoryNotDeleted: report.directoryNotDeleted },
          "TD directory deletes cut short by the deadline: the entries expire by their TTL",
        );
      }
    }
    this.invocations.dispose();
    this.observation.dispose();
    this.settings.dispose();
    await this.blobs.dispose();
    report.durationMs = performance.now() - started;
    return report;
  }

  async #buildApp(): Promise<FastifyInstance> {
    const app = Fastify({
      // A child, so the quiet listen (#listen) can lower its level without touching ours;
      // every log line about a request (Fastify's own too) shows its URL without the token.
      loggerInstance: this.logger.child(
        {},
        { serializers: { req: redactedRequest } },
      ) as FastifyBaseLogger,
      logController: new QuietRequestLog(),
      bodyLimit: this.#limits.bodyBytes,
      requestTimeout: this.#limits.requestTimeoutMs,
      // https.createServer takes http.createServer's options too: the limits hold for both.
      ...(this.#options.tls
        ? { https: { ...httpServerOptions(this.#limits), ...this.#options.tls } }
        : { http: httpServerOptions(this.#limits) }),
      clientErrorHandler: clientErrorHandler(this.#limits, this.logger as FastifyBaseLogger),
      trustProxy: this.#options.trustProxy ?? false,
      // Our own onRequest hook answers 503 with Problem Details instead.
      return503OnClosing: false,
      forceCloseConnections: "idle",
      // A long path segment is an unknown id (404), not a 414 from the router: the URL as
      // a whole is limited by limits.urlBytes.
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: this.#limits.urlBytes },
      // A URL the router cannot decode (`/stage/%zz`) gets Problem Details too.
      frameworkErrors: (error, request, reply) => {
        const detail =
          error.code === "FST_ERR_BAD_URL"
            ? "The URL has an invalid percent-encoding."
            : error.message;
        // Before any hook, so the onResponse hook below never sees it: close it here.
        if (isUpgradeRequest(request.raw))
          reply.raw.once("finish", () => request.raw.socket.destroy());
        sendProblem(reply, {
          type: problemType("malformed-request"),
          title: STATUS_CODES[400]!,
          status: 400,
          detail,
          instance: redactToken(request.url),
        });
      },
    });
    // Every method Node parses gets routed (WebDAV's PROPFIND, TRACE, …), so on an existing
    // resource it is a 405 with Allow, not a 404 saying the resource does not exist.
    for (const method of METHODS) {
      if (method !== "CONNECT" && !app.supportedMethods.includes(method)) {
        app.addHttpMethod(method, { hasBody: true });
      }
    }
    // Validation happens in the runtime (ExposedThing), one place for every transport;
    // route schemas are there for the OpenAPI document.
    app.setValidatorCompiler(() => (value) => ({ value }));
    app.setSerializerCompiler(() => (value) => JSON.stringify(value));
    app.setErrorHandler(handleError);
    // Values are JSON: a text/plain body would reach validation as a string (or be stored).
    app.removeContentTypeParser("text/plain");
    // An empty JSON body means "no value" (clients that always send the header invoke
    // input-less actions that way); everything else goes through Fastify's safe parser.
    const parseJson = app.getDefaultJsonParser("error", "error");
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
      if (body === "") {
        markEmptyBody(request);
        return done(null, undefined);
      }
      try {
        checkJsonDepth(body as string, this.#limits.jsonDepth);
      } catch (error) {
        return done(error as Error, undefined);
      }
      parseJson(request, body as string, (error, value) => {
        if (!error) return done(null, value);
        // Fastify says only "not valid JSON" for both of its refusals: say which it was.
        try {
          JSON.parse(body as string);
        } catch (syntax) {
          return done(Object.assign(error, { message: (syntax as Error).message }), undefined);
        }
        done(
          new InvalidInputError(
            "the body has a '__proto__' or 'constructor.prototype' member, which is refused" +
              " (it could change how the server's objects behave); rename that member",
          ),
          undefined,
        );
      });
    });
    app.setNotFoundHandler((request, reply) => {
      const { problem, headers } = toProblem(this.#notFound(request.url), request.url);
      return sendProblem(reply, problem, headers);
    });
    // Callback style, not async: these run on every request.
    app.addHook("onRequest", (request, reply, done) => {
      if (!this.#closing) return done();
      reply.header("connection", "close");
      const { problem } = toProblem(
        new UnavailableError("the server is shutting down"),
        request.url,
      );
      sendProblem(reply, problem);
    });
    // A websocket handshake answered over HTTP instead (401, 414, 503, a bad URL) has a
    // socket Node no longer parses: nothing else closes it, and a client that waits for
    // our FIN (Python's `websockets`) would hold it, and shutdown, open. @fastify/websocket
    // closes it only when its own onRequest hook ran, i.e. not after an earlier refusal.
    app.addHook("onResponse", (request, _reply, done) => {
      if (isUpgradeRequest(request.raw)) request.raw.socket.destroy();
      done();
    });
    // What every request must pass before routing: the URL limit, the token, then (for
    // writes, invocations, cancellations) that no other site's page sent it.
    const auth = this.#auth;
    const crossOrigin = new CrossOriginProtection(this.#options.cors ?? false);
    app.addHook("onRequest", (request, _reply, done) => {
      try {
        checkUrlLength(request.raw.url ?? "", this.#limits);
        auth?.check(request);
        crossOrigin.check(request);
      } catch (error) {
        return done(error as Error);
      }
      done();
    });

    const cors = this.#options.cors ?? false;
    if (cors) {
      await app.register(corsPlugin, {
        origin: cors === true ? true : cors,
        methods: ["GET", "HEAD", "PUT", "POST", "DELETE"],
        exposedHeaders: ["Location", "Content-Range", "X-Timestamp", "X-Sequence"],
      });
    }

    await registerOpenApi(app, "labthings-ts");
    const context: RouteContext = {
      registry: this.registry,
      descriptions: this.#descriptions,
      prefix: this.#prefix,
      eventStreams: new EventStreams(this.observation, this.longLived, this.logger),
    };
    // Websockets are ended by the long-lived registry (close 1001); at close this plugin
    // only stops accepting new ones (its default would close them with no code first).
    await app.register(websocketPlugin, {
      options: { maxPayload: 64 * 1024 },
      preClose: function (this: FastifyInstance, done: () => void) {
        this.websocketServer.close(() => done());
      },
    });
    refuseStrayHandshakes(app);
    await app.register(
      async (api) => {
        registerIndexPage(api, context);
        registerAccessRoute(api, this.#auth);
        registerSettingsStatusRoute(api, this.settings);
        registerDescriptionRoutes(api, context);
        registerPropertyRoutes(api, context);
        registerStreamRoutes(api, context, this.longLived);
        registerActionRoutes(api, { ...context, invocations: this.invocations, blobs: this.blobs });
        registerEventRoutes(api, context);
        registerWebSocketRoutes(api, {
          ...context,
          hub: this.observation,
          invocations: this.invocations,
          longLived: this.longLived,
          logger: this.logger,
        });
        await registerDocsPages(api, this.#prefix);
        registerFleetRoutes(api, () => this.#fleet, context);
      },
      { prefix: this.#prefix },
    );
    registerWellKnownRoute(app, this.#serverDescription!, this.#prefix);
    await app.ready();
    return app;
  }

  /** TD ids (kept in the settings folder), then every TD builder and the server's own TD. */
  async #makeDescriptions(): Promise<void> {
    const overrides = new Map(
      this.#entries.flatMap((entry) => (entry.id ? [[entry.name, entry.id] as const] : [])),
    );
    const ids = await resolveThingIdentities(
      this.#options.settingsDir,
      this.#entries.map((entry) => entry.name),
      overrides,
      this.logger,
    );
    this.#thingIds = ids.things;
    const security = this.#auth ? BEARER_SECURITY : undefined;
    const contributors = this.mqtt ? [this.mqtt.forms] : [];
    for (const exposed of this.registry.values()) {
      this.#descriptions.set(
        exposed.name,
        new ThingDescriptionBuilder(exposed, security, {
          id: ids.things.get(exposed.name),
          contributors,
          links: [COLLECTION_LINK],
        }),
      );
    }
    this.#serverDescription = new ServerDescription({
      id: ids.server,
      title: `labthings-ts on ${machineLabel()}`,
      things: this.registry.names,
      securityDefinitions: security ?? { nosec_sc: { scheme: "nosec" } },
    });
  }

  /** DNS-SD, the TD Directory, MQTT and the fleet survey: in the background, never blocking. */
  #startBeyondHttp(host: string, port: number): void {
    const things = [...this.registry.values()].map((exposed) => ({
      name: exposed.name,
      title: exposed.title,
      id: this.#thingIds.get(exposed.name)!,
      describe: () => this.describeForOthers(exposed.name),
    }));
    const mdns = mdnsEnabled(host, this.#options.mdns);
    this.#presence = new NetworkPresence({
      host,
      port,
      prefix: this.#prefix,
      mdns,
      scheme: this.#certificate ? "https" : "http",
      directory: this.#options.directory,
      logger: this.logger.child({ part: "discovery" }),
    });
    this.#presence.start(things);
    this.mqtt?.start({
      publicUrl: this.publicUrl,
      describe: (name) => JSON.stringify(this.describeForOthers(name)),
    });
    this.#fleet = new FleetSurvey({
      self: [`${this.publicUrl}/`, `${this.url}/`],
      browse: mdns,
      directory: this.#options.directory,
      servers: this.#options.fleet?.servers ?? [],
      logger: this.logger.child({ part: "fleet" }),
    });
  }

  /** A 404 that says what was not found: the Thing, or the affordance of a Thing. */
  #notFound(url: string): NotFoundError | UnavailableError {
    const path = url.split("?")[0]!;
    const rest = path.startsWith(this.#prefix) ? path.slice(this.#prefix.length) : path;
    const [thing, affordance] = rest.split("/").filter(Boolean).map(decodeSegment);
    const failure = thing === undefined ? undefined : this.registry.failed.get(thing);
    if (failure !== undefined) {
      return new UnavailableError(`Thing '${thing}' failed to start: ${failure}`);
    }
    if (thing && this.registry.has(thing) && affordance) {
      return new NotFoundError(`Thing '${thing}' has no affordance '${affordance}'`);
    }
    if (thing && !this.registry.has(thing)) {
      return new NotFoundError(
        `no Thing named '${thing}' (Things: ${this.registry.names.join(", ")})`,
      );
    }
    return new NotFoundError(`nothing at ${path}`);
  }
}

/** `camera.exposureTime = 20000 (/settings/camera.json: EROFS: read-only file system, …)`. */
export function describeUnsaved(setting: UnsavedSetting): string {
  const why = setting.error ? `: ${setting.error}` : "";
  return `${setting.thing}.${setting.key} = ${JSON.stringify(setting.value)} (${setting.file}${why})`;
}

/** One debug line per request instead of Fastify's two info lines: a lab server is quiet. */
class QuietRequestLog extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    if (request.log.level !== "debug" && request.log.level !== "trace") return;
    request.log.debug(
      {
        method: request.method,
        url: redactToken(request.url),
        status: reply.statusCode,
        ms: reply.elapsedTime,
        err: error ?? undefined,
      },
      "request",
    );
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function normalisePrefix(prefix: string | undefined): string {
  if (!prefix || prefix === "/") return "";
  return `/${prefix.replace(/^\/+|\/+$/g, "")}`;
}
