/**
 * `ThingClient`: a client for any Thing whose Thing Description follows the WoT HTTP
 * Basic and SSE Profiles. Every request follows the TD's forms (op, href, method,
 * content type, subprotocol) rather than assuming a URL layout. Runs in Node 20 and in
 * browsers: it uses only `fetch`, streams, `TextDecoder`, `AbortController` and `URL`.
 */
import { abortableSleep } from "./abortable-sleep.js";
import {
  type AffordanceKind,
  AffordanceNotFoundError,
  ProtocolError,
  type RemoteActionStatus,
} from "./client-errors.js";
import { type AffordanceKindWithForms, type SelectedForm, selectForm } from "./form-selection.js";
import { type FetchFunction, HttpRequester, httpError, readJson } from "./http-requester.js";
import { InvocationHandle, type InvocationUpdate, type WatchMode } from "./invocation-handle.js";
import { mergeStreams } from "./merged-streams.js";
import { readMjpegFrames } from "./mjpeg-reader.js";
import { type ReconnectOptions, readEventStream } from "./sse-reader.js";
import {
  type ClientThingDescription,
  type FormDescription,
  type LinkDescription,
  parseThingDescription,
} from "./thing-description.js";

export interface ThingClientOptions {
  /** The fetch to use (e.g. one that adds credentials); default the global fetch. */
  fetch?: FetchFunction;
  /** Headers sent with every request. */
  headers?: HeadersInit;
  /** Aborts `connect()` (fetching the TD). */
  signal?: AbortSignal;
  /** Reconnecting event streams (observe, subscribe, invocation status); see ReconnectOptions. */
  reconnect?: ReconnectOptions;
  /** Longest pause between two polls of an invocation's status; default 1000 ms. */
  pollIntervalMs?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ObserveOptions extends RequestOptions {
  /** Called each time the event stream is open (also after a reconnect). */
  onOpen?: () => void;
  /** Overrides the client's reconnect options; `false` ends the iteration when the connection does. */
  reconnect?: ReconnectOptions | false;
}

export interface InvokeOptions extends RequestOptions {
  /**
   * Aborting cancels the invocation on the server; `result()` then rejects with the
   * signal's reason. (Also aborts the invoking request itself if it is still under way.)
   */
  signal?: AbortSignal;
  /** Called with every status, progress and log update until the invocation ends. */
  onProgress?: (update: InvocationUpdate) => void;
  /** How to follow an asynchronous invocation: SSE when the server offers it ("auto", default), or polling. */
  watch?: WatchMode;
}

/**
 * One change seen by `observeAllProperties`: the property's name and its new value. With
 * an interface of the Thing's properties, `name` narrows `value`.
 */
export type PropertyChange<Values extends object = Record<string, unknown>> = {
  [Name in keyof Values & string]: { name: Name; value: Values[Name] };
}[keyof Values & string];

/**
 * One emission seen by `subscribeAllEvents`: the event's name and its data. With an
 * interface of the Thing's events' data, `name` narrows `data`.
 */
export type EventEmission<Events extends object = Record<string, unknown>> = {
  [Name in keyof Events & string]: { name: Name; data: Events[Name] };
}[keyof Events & string];

/** A reference to binary data an action returned: `{ href, mediaType, size }`. */
export interface BlobReference {
  href: string;
  mediaType?: string;
  size?: number;
}

export interface DownloadedBlob {
  bytes: Uint8Array;
  mediaType: string;
}

const JSON_TYPE = "application/json";
const MJPEG_TYPE = "multipart/x-mixed-replace";
const SNAPSHOT_WAIT_MS = 5000;

/**
 * A client for one Thing.
 *
 * @example
 * ```ts
 * import { ThingClient } from "labthings-ts/client";
 *
 * const stage = await ThingClient.connect("http://127.0.0.1:5000/stage/");
 * await stage.writeProperty("speed", 5000);
 * const move = await stage.invokeAction("moveRelative", { x: 1000 });
 * console.log(await move.result()); // { x: 1000, y: 0, z: 0 }
 * for await (const position of stage.observeProperty("position", { signal })) console.log(position);
 * ```
 */
export class ThingClient {
  /** The Thing Description, checked and with empty maps filled in. */
  readonly description: ClientThingDescription;
  /** Where the TD came from. */
  readonly url: string;
  /** What relative hrefs resolve against: the TD's `base` (resolved), else its URL. */
  readonly base: string;
  readonly #requester: HttpRequester;
  readonly #options: ThingClientOptions;

  constructor(description: ClientThingDescription, url: string, options: ThingClientOptions = {}) {
    this.description = description;
    this.url = url;
    this.base = new URL(description.base ?? url, url).href;
    this.#requester = new HttpRequester(options.fetch, options.headers);
    this.#options = options;
  }

  /**
   * Fetch the Thing Description at `url`, check it, and return a client for the Thing.
   *
   * @throws HttpError when the server answers an error; ProtocolError when the answer
   *   is not a Thing Description; ConnectionError when the server cannot be reached.
   */
  static async connect(url: string | URL, options: ThingClientOptions = {}): Promise<ThingClient> {
    const href = new URL(url).href;
    const requester = new HttpRequester(options.fetch, options.headers);
    const response = await requester.send(href, {
      accept: "application/td+json, application/json;q=0.9",
      signal: options.signal,
    });
    const contentType = response.headers.get("content-type");
    if (contentType !== null && !/json/i.test(contentType)) {
      await response.body?.cancel().catch(() => {});
      throw new ProtocolError(
        `${href} is not a Thing Description: it answered '${contentType}', not JSON`,
        { url: href, status: response.status },
      );
    }
    const json = await readJson<unknown>(response, "GET", href);
    // A redirect moves where relative hrefs resolve.
    const finalUrl = response.url === "" ? href : response.url;
    return new ThingClient(parseThingDescription(json, finalUrl), finalUrl, options);
  }

  /**
   * A client for a Thing Description you already have (e.g. read from a file); relative
   * hrefs resolve against its `base`, else against `url`.
   */
  static fromDescription(
    description: unknown,
    url: string | URL,
    options: ThingClientOptions = {},
  ): ThingClient {
    const href = new URL(url).href;
    return new ThingClient(parseThingDescription(description, href), href, options);
  }

  /** The Thing's title. */
  get title(): string {
    return this.description.title;
  }

  /** Names of the MJPEG streams the TD links to (for `stream()` and `snapshot()`). */
  get streamNames(): string[] {
    return this.#streamLinks().map(({ name }) => name);
  }

  /** Read a property (readproperty). */
  async readProperty<T = unknown>(name: string, options: RequestOptions = {}): Promise<T> {
    const form = this.#propertyForm(name, "readproperty");
    return (await this.#requester.json<T>(form.url, {
      method: form.method,
      accept: form.contentType,
      signal: options.signal,
    })) as T;
  }

  /**
   * Write a property (writeproperty). Rejects with HttpError when the server refuses
   * the value (labthings-ts: 400, with Problem Details naming each invalid field).
   */
  async writeProperty(name: string, value: unknown, options: RequestOptions = {}): Promise<void> {
    const form = this.#propertyForm(name, "writeproperty");
    const response = await this.#requester.send(form.url, {
      method: form.method,
      json: value,
      contentType: form.contentType,
      signal: options.signal,
    });
    await response.body?.cancel().catch(() => {});
  }

  /**
   * Every readable property in one object: the TD's readallproperties form when it has
   * one, otherwise one readproperty per property (writeOnly ones excluded).
   */
  async readAllProperties<T extends object = Record<string, unknown>>(
    options: RequestOptions = {},
  ): Promise<T> {
    const form = selectForm(this.description.forms, "readallproperties", "thing", this.base);
    if (form) {
      return ((await this.#requester.json<T>(form.url, {
        method: form.method,
        accept: form.contentType,
        signal: options.signal,
      })) ?? {}) as T;
    }
    const readable = Object.keys(this.description.properties).filter(
      (name) => this.#maybePropertyForm(name, "readproperty") !== undefined,
    );
    const values = await Promise.all(readable.map((name) => this.readProperty(name, options)));
    return Object.fromEntries(readable.map((name, i) => [name, values[i]])) as T;
  }

  /** Write several properties at once (writemultipleproperties; all or nothing on labthings-ts). */
  async writeMultipleProperties(
    values: Record<string, unknown>,
    options: RequestOptions = {},
  ): Promise<void> {
    const form = this.#form(this.description.forms, "writemultipleproperties", "thing", "thing");
    const response = await this.#requester.send(form.url, {
      method: form.method,
      json: values,
      contentType: form.contentType,
      signal: options.signal,
    });
    await response.body?.cancel().catch(() => {});
  }

  /**
   * Each new value of a property, over server-sent events (observeproperty), until
   * `signal` aborts. A dropped connection is re-opened with `Last-Event-ID`, so a
   * server that keeps a replay buffer (labthings-ts does) loses no change.
   */
  async *observeProperty<T = unknown>(
    name: string,
    options: ObserveOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    const form = this.#propertyForm(name, "observeproperty");
    for await (const { value } of this.#messages(form, options)) yield value as T;
  }

  /** Each emission of an event (subscribeevent, server-sent events), until `signal` aborts. */
  async *subscribeEvent<T = unknown>(
    name: string,
    options: ObserveOptions = {},
  ): AsyncGenerator<T, void, undefined> {
    for await (const { value } of this.#messages(this.#eventForm(name), options)) yield value as T;
  }

  /**
   * Every change of every property, named, until `signal` aborts: one event stream (the
   * TD's observeallproperties form; each message's `event:` names the property) with the
   * same reconnects as `observeProperty`. Messages naming no property of the TD are
   * skipped. A TD without that form (another server's Thing) is followed with one
   * observeproperty stream per property that has one, merged in order of arrival; `onOpen`
   * then runs once all of them are open, and again after any of them reconnects.
   *
   * @throws AffordanceNotFoundError (on the first `next()`) when the Thing offers neither.
   * @example
   * ```ts
   * for await (const { name, value } of stage.observeAllProperties({ signal })) {
   *   console.log(name, value); // "position" { x: 100, y: 0, z: 0 }, "speed" 5000, …
   * }
   * ```
   */
  async *observeAllProperties<Values extends object = Record<string, unknown>>(
    options: ObserveOptions = {},
  ): AsyncGenerator<PropertyChange<Values>, void, undefined> {
    const properties = this.description.properties;
    const messages = this.#thingWideMessages("observeallproperties", options, () =>
      Object.keys(properties).map((name) => ({
        name,
        form: this.#maybePropertyForm(name, "observeproperty"),
      })),
    );
    for await (const { name, value } of messages) {
      if (Object.hasOwn(properties, name)) yield { name, value } as PropertyChange<Values>;
    }
  }

  /**
   * Every emission of every event, named, until `signal` aborts: one event stream (the
   * TD's subscribeallevents form; each message's `event:` names the event), reconnecting as
   * `subscribeEvent` does. Messages naming no event of the TD are skipped. Without that
   * form, one subscribeevent stream per event, merged in order of arrival (`onOpen` as in
   * `observeAllProperties`).
   *
   * @throws AffordanceNotFoundError (on the first `next()`) when the Thing offers neither.
   * @example
   * ```ts
   * for await (const { name, data } of stage.subscribeAllEvents({ signal })) {
   *   if (name === "limitReached") console.log("clamped at", data);
   * }
   * ```
   */
  async *subscribeAllEvents<Events extends object = Record<string, unknown>>(
    options: ObserveOptions = {},
  ): AsyncGenerator<EventEmission<Events>, void, undefined> {
    const events = this.description.events;
    const messages = this.#thingWideMessages("subscribeallevents", options, () =>
      Object.entries(events).map(([name, event]) => ({
        name,
        form: selectForm(event.forms, "subscribeevent", "event", this.base),
      })),
    );
    for await (const { name, value } of messages) {
      if (Object.hasOwn(events, name)) yield { name, data: value } as EventEmission<Events>;
    }
  }

  /**
   * Invoke an action (invokeaction). A synchronous answer (200 with the output, or 204)
   * gives a handle that has already completed; an asynchronous one (201 + Location) a
   * handle that follows the invocation.
   *
   * @throws HttpError when the server refuses the invocation (e.g. 400 for invalid input).
   */
  async invokeAction<Output = unknown>(
    name: string,
    input?: unknown,
    options: InvokeOptions = {},
  ): Promise<InvocationHandle<Output>> {
    const action = this.#affordance("action", this.description.actions, name);
    const form = this.#form(action.forms, "invokeaction", "action", name);
    const response = await this.#requester.send(form.url, {
      method: form.method,
      accept: JSON_TYPE,
      json: input,
      contentType: form.contentType,
      signal: options.signal,
    });
    const common = {
      requester: this.#requester,
      action: name,
      declaresOutput: action.output !== undefined,
      signal: options.signal,
      onProgress: options.onProgress,
      watch: options.watch,
      pollIntervalMs: this.#options.pollIntervalMs,
      reconnect: this.#options.reconnect,
    };
    const body = await readJson<unknown>(response, form.method, form.url);
    if (response.status !== 201 && response.status !== 202) {
      // Synchronous: the answer is the output itself.
      return new InvocationHandle<Output>({
        ...common,
        report: { status: "completed", output: body },
      });
    }
    const report = body as RemoteActionStatus | undefined;
    const location = response.headers.get("location") ?? report?.href;
    if (!location) {
      throw new ProtocolError(
        `${form.method} ${form.url} answered ${response.status} without a Location for the invocation`,
        { url: form.url, status: response.status },
      );
    }
    const href = new URL(location, form.url).href;
    const id = typeof report?.id === "string" ? report.id : lastSegment(href);
    const query = selectForm(action.forms, "queryaction", "action", this.base, {
      uriVariables: { id },
    });
    const cancel = selectForm(action.forms, "cancelaction", "action", this.base, {
      uriVariables: { id },
    });
    return new InvocationHandle<Output>({
      ...common,
      href,
      id,
      report: report && typeof report.status === "string" ? report : { status: "pending" },
      queryMethod: query?.method,
      cancelMethod: cancel?.method,
    });
  }

  /**
   * Download binary data an action returned as `{ href, mediaType, size }` (href
   * resolved against the Thing's base).
   *
   * @example
   * ```ts
   * const capture = await camera.invokeAction<BlobReference>("capture");
   * const { bytes, mediaType } = await camera.downloadBlob(await capture.result());
   * ```
   */
  async downloadBlob(
    reference: BlobReference,
    options: RequestOptions = {},
  ): Promise<DownloadedBlob> {
    const url = new URL(reference.href, this.base).href;
    const response = await this.#requester.send(url, {
      accept: reference.mediaType ?? "*/*",
      signal: options.signal,
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const mediaType =
      response.headers.get("content-type") ?? reference.mediaType ?? "application/octet-stream";
    return { bytes, mediaType };
  }

  /**
   * The frames of an MJPEG stream the TD links to (`links` with type
   * multipart/x-mixed-replace), each a JPEG, until `signal` aborts or the server ends the
   * stream.
   *
   * @example
   * ```ts
   * for await (const jpeg of camera.stream("stream", { signal })) show(jpeg);
   * ```
   */
  async *stream(
    name: string,
    options: RequestOptions = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const { url } = this.#streamLink(name);
    if (options.signal?.aborted) return;
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const response = await this.#requester.send(url, {
        accept: MJPEG_TYPE,
        signal: controller.signal,
      });
      yield* readMjpegFrames(response, url);
    } catch (error) {
      if (controller.signal.aborted) return;
      throw error;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  /**
   * The newest frame of a stream, as JPEG bytes (the link `<stream>/snapshot` of type
   * image/jpeg). Before the stream's first frame the server answers 503 with Retry-After:
   * this waits and asks again, for up to `waitMs` (default 5000).
   */
  async snapshot(
    name: string,
    options: RequestOptions & { waitMs?: number } = {},
  ): Promise<Uint8Array> {
    const { url } = this.#streamLink(name);
    const snapshot = this.description.links.find(
      (link) =>
        link.type?.startsWith("image/") &&
        new URL(link.href, this.base).href === `${url.replace(/\/$/, "")}/snapshot`,
    );
    if (!snapshot) {
      throw new AffordanceNotFoundError(
        "stream",
        name,
        `the Thing '${this.title}' links no snapshot for stream '${name}'`,
      );
    }
    const snapshotUrl = new URL(snapshot.href, this.base).href;
    const request = { accept: snapshot.type ?? "image/jpeg", signal: options.signal };
    // Before a stream's first frame a server may answer 503 + Retry-After: wait, within bounds.
    const deadline = Date.now() + (options.waitMs ?? SNAPSHOT_WAIT_MS);
    for (;;) {
      const response = await this.#requester.send(snapshotUrl, request, (s) => s === 503);
      if (response.ok) return new Uint8Array(await response.arrayBuffer());
      const retryAfterMs = Number(response.headers.get("retry-after")) * 1000;
      if (!(retryAfterMs >= 0) || Date.now() + retryAfterMs > deadline) {
        throw await httpError("GET", snapshotUrl, response);
      }
      await response.body?.cancel().catch(() => {});
      const pause = new AbortController();
      const stop = () => pause.abort();
      options.signal?.addEventListener("abort", stop, { once: true });
      await abortableSleep(Math.max(retryAfterMs, 50), pause.signal);
      options.signal?.removeEventListener("abort", stop);
      options.signal?.throwIfAborted();
    }
  }

  /** Resolve an href from this Thing (e.g. a blob's) to an absolute URL. */
  resolve(href: string): string {
    return new URL(href, this.base).href;
  }

  /**
   * The messages of one event stream, each named by its `event:` field, data parsed as
   * JSON. An unnamed message that repeats the one before it (same id, same data) is its
   * twin and skipped: labthings-ts's first SSE form sends each message named and unnamed,
   * for clients (node-wot's) that hear only unnamed ones.
   */
  async *#messages(
    form: SelectedForm,
    options: ObserveOptions,
  ): AsyncGenerator<NamedValue, void, undefined> {
    let previous: { event: string; data: string; lastEventId: string } | undefined;
    for await (const message of readEventStream(this.#requester, form.url, {
      method: form.method,
      signal: options.signal,
      reconnect: options.reconnect ?? this.#options.reconnect,
      onOpen: options.onOpen,
    })) {
      const twin =
        message.event === "message" &&
        previous !== undefined &&
        previous.event !== "message" &&
        previous.lastEventId !== "" &&
        previous.lastEventId === message.lastEventId &&
        previous.data === message.data;
      previous = message;
      if (twin) continue;
      let value: unknown;
      try {
        value = JSON.parse(message.data);
      } catch (error) {
        throw new ProtocolError(
          `${form.url} sent an event whose data is not JSON: ${message.data}`,
          {
            url: form.url,
            cause: error,
          },
        );
      }
      yield { name: message.event, value };
    }
  }

  /**
   * The Thing-wide stream for `op` when the TD has a form for it, else the affordances'
   * own streams merged (those with a form this client can use).
   *
   * @throws AffordanceNotFoundError when there is neither.
   */
  #thingWideMessages(
    op: "observeallproperties" | "subscribeallevents",
    options: ObserveOptions,
    singleForms: () => { name: string; form: SelectedForm | undefined }[],
  ): AsyncGenerator<NamedValue, void, undefined> {
    const form = selectForm(this.description.forms, op, "thing", this.base);
    if (form) return this.#messages(form, options);
    const feeds = singleForms().flatMap(({ name, form: single }) =>
      single ? [{ name, form: single }] : [],
    );
    if (feeds.length === 0) {
      const kind = op === "observeallproperties" ? "property" : "event";
      const singleOp = op === "observeallproperties" ? "observeproperty" : "subscribeevent";
      throw new AffordanceNotFoundError(
        "thing",
        this.title,
        `the Thing '${this.title}' has no form for '${op}' over server-sent events, nor a ${kind} with one for '${singleOp}', that this client can use (HTTP, JSON)`,
      );
    }
    return this.#mergedMessages(feeds, options);
  }

  /**
   * One stream per affordance, merged; each value named by its affordance (not by the
   * message's `event:`, which a per-affordance stream need not carry). `onOpen` runs once
   * every stream has opened, then after each reconnect of any of them.
   */
  #mergedMessages(
    feeds: { name: string; form: SelectedForm }[],
    options: ObserveOptions,
  ): AsyncGenerator<NamedValue, void, undefined> {
    const openedOnce = new Set<string>();
    const onOpenOf = (name: string) => () => {
      openedOnce.add(name);
      // Until every stream has opened, one (re)opening is not yet "the feed is open".
      if (openedOnce.size === feeds.length) options.onOpen?.();
    };
    return mergeStreams(
      (signal) =>
        feeds.map(({ name, form }) =>
          this.#renamed(name, this.#messages(form, { ...options, signal, onOpen: onOpenOf(name) })),
        ),
      { signal: options.signal },
    );
  }

  async *#renamed(
    name: string,
    messages: AsyncIterable<NamedValue>,
  ): AsyncGenerator<NamedValue, void, undefined> {
    for await (const { value } of messages) yield { name, value };
  }

  #eventForm(name: string): SelectedForm {
    const event = this.#affordance("event", this.description.events, name);
    return this.#form(event.forms, "subscribeevent", "event", name);
  }

  #affordance<A>(kind: AffordanceKind, map: Record<string, A>, name: string): A {
    const affordance = Object.hasOwn(map, name) ? map[name] : undefined;
    if (affordance === undefined) {
      const known = Object.keys(map);
      throw new AffordanceNotFoundError(
        kind,
        name,
        `the Thing '${this.title}' has no ${kind} '${name}'` +
          (known.length > 0 ? ` (it has: ${known.join(", ")})` : ""),
      );
    }
    return affordance;
  }

  #maybePropertyForm(name: string, op: string): SelectedForm | undefined {
    const property = this.#affordance("property", this.description.properties, name);
    return selectForm(property.forms, op, "property", this.base, { access: property });
  }

  #propertyForm(name: string, op: string): SelectedForm {
    const form = this.#maybePropertyForm(name, op);
    if (!form) throw this.#noForm("property", name, op);
    return form;
  }

  #form(
    forms: readonly FormDescription[],
    op: string,
    kind: AffordanceKindWithForms,
    name: string,
  ): SelectedForm {
    const form = selectForm(forms, op, kind, this.base);
    if (!form) throw this.#noForm(kind, name, op);
    return form;
  }

  #noForm(kind: AffordanceKind, name: string, op: string): AffordanceNotFoundError {
    const sse =
      op.startsWith("observe") || op.startsWith("subscribe") ? " over server-sent events" : "";
    const what =
      kind === "thing" ? `the Thing '${this.title}'` : `${kind} '${name}' of '${this.title}'`;
    return new AffordanceNotFoundError(
      kind,
      name,
      `${what} has no form for '${op}'${sse} that this client can use (HTTP, JSON)`,
    );
  }

  #streamLinks(): { name: string; url: string; link: LinkDescription }[] {
    return this.description.links
      .filter((link) => link.type?.toLowerCase().startsWith(MJPEG_TYPE))
      .map((link) => {
        const url = new URL(link.href, this.base).href;
        return { name: streamName(url, this.base), url, link };
      });
  }

  #streamLink(name: string): { url: string; link: LinkDescription } {
    const found = this.#streamLinks().find((candidate) => candidate.name === name);
    if (!found) {
      const known = this.streamNames;
      throw new AffordanceNotFoundError(
        "stream",
        name,
        `the Thing '${this.title}' links no MJPEG stream '${name}'` +
          (known.length > 0 ? ` (it has: ${known.join(", ")})` : ""),
      );
    }
    return found;
  }
}

/** An event-stream message's name (its affordance) and its parsed data. */
interface NamedValue {
  name: string;
  value: unknown;
}

/** A stream's name: its URL relative to the Thing's base (`stream`), else its last path segment. */
function streamName(url: string, base: string): string {
  const relative = url.startsWith(base) ? url.slice(base.length) : lastSegment(url);
  return relative.split(/[?#]/)[0]!.replace(/\/$/, "");
}

function lastSegment(url: string): string {
  const segments = new URL(url).pathname.split("/").filter((segment) => segment !== "");
  return decodeURIComponent(segments.at(-1) ?? "");
}
