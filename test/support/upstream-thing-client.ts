/**
 * labthings-fastapi's Python `ThingClient`, replayed request for request in TypeScript, so
 * the tests can show that scripts written for that server work against ours (its client
 * needs pydantic 2 and httpx2, which this machine cannot install). It follows
 * labthings-fastapi v0.3.0's `src/labthings_fastapi/client/__init__.py` (cited below as
 * `client:LINE`) and `outputs/blob.py` (`blob:LINE`): the same requests in the same order,
 * with httpx's default headers, the same checks of each answer, and the same exceptions
 * (named classes here) with the same messages. Every request is recorded for the tests.
 */
import { Agent, request as httpRequest } from "node:http";
import { until } from "./actions-http.js";

/** httpx's default request headers (httpx `_client.py`; the version is httpx2's). */
const HTTPX_HEADERS = {
  accept: "*/*",
  "accept-encoding": "gzip, deflate",
  connection: "keep-alive",
  "user-agent": "python-httpx/0.28.1",
};

/** client:30 */
const ACTION_RUNNING_KEYWORDS = ["idle", "pending", "running"];

/** labthings_fastapi.problem_details.docs_url() for its own exceptions. */
const DOCS_URL =
  "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html";
const docsUrl = (name: string) => `${DOCS_URL}#labthings_fastapi.exceptions.${name}`;

// The exceptions the client raises (labthings_fastapi/exceptions.py).
export class ClientPropertyError extends Error {}
export class FailedToInvokeActionError extends Error {}
export class ServerActionError extends Error {}
export class GlobalLockBusyError extends Error {}
export class InvocationCancelledError extends Error {}
/** client:33, a KeyError: the invocation has no `links`. */
export class ObjectHasNoLinksError extends Error {}
/** httpx's `raise_for_status()`. */
export class HTTPStatusError extends Error {}

/** One request as it went on the wire. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** What the client reads of an httpx `Response`. */
export interface HttpxResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  content: Buffer;
  text: string;
  /** `response.is_error`: 4xx and 5xx. */
  isError: boolean;
  json(): unknown;
}

/**
 * The part of `httpx2.Client` the ThingClient uses: `get`, `put` and `post` (with
 * `json=`), a `base_url` relative URLs are merged with, headers sent on every request,
 * and one keep-alive connection pool.
 */
export class HttpxClient {
  readonly requests: RecordedRequest[];
  readonly #agent = new Agent({ keepAlive: true });

  constructor(
    private readonly options: { baseUrl?: string; headers?: Record<string, string> } = {},
    /** Share one log between clients (the TD fetch and the ThingClient's own). */
    log: RecordedRequest[] = [],
  ) {
    this.requests = log;
  }

  get(url: string): Promise<HttpxResponse> {
    return this.#send("GET", url);
  }

  put(url: string, json: unknown): Promise<HttpxResponse> {
    return this.#send("PUT", url, json);
  }

  post(url: string, json: unknown): Promise<HttpxResponse> {
    return this.#send("POST", url, json);
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, url: string, json?: unknown): Promise<HttpxResponse> {
    // httpx merges a relative URL onto base_url; an absolute one is used as it is.
    const target = new URL(url, this.options.baseUrl);
    const headers: Record<string, string> = { ...HTTPX_HEADERS, ...this.options.headers };
    // httpx serialises `json=` compactly, as UTF-8, with this Content-Type.
    const body = json === undefined ? undefined : JSON.stringify(json);
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    this.requests.push({ method, url: target.href, headers, ...(body ? { body } : {}) });
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        target,
        { method, headers, agent: this.#agent, timeout: 15_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const content = Buffer.concat(chunks);
            const text = content.toString("utf8");
            const status = res.statusCode ?? 0;
            resolve({
              status,
              headers: res.headers,
              content,
              text,
              isError: status >= 400,
              json: () => JSON.parse(text) as unknown,
            });
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${target.href} timed out`)));
      req.on("error", reject);
      req.end(body);
    });
  }
}

/** Python's `urllib.parse.urljoin` for the relative paths the client joins. */
function urljoin(base: string, path: string): string {
  return new URL(path, `http://host${base}`).pathname;
}

type Json = Record<string, unknown>;

/** client:42 `_get_link` */
function getLink(obj: Json, rel: string): Json {
  if (!("links" in obj)) throw new ObjectHasNoLinksError(`Can't find any links on ${obj}.`);
  const link = (obj.links as Json[]).find((l) => l.rel === rel);
  if (!link) throw new Error(`KeyError: No link was found with rel='${rel}'`);
  return link;
}

/** client:73 `invocation_href` */
function invocationHref(invocation: Json): string {
  return getLink(invocation, "self").href as string;
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** client:88 `poll_invocation`, with its default intervals (first 0.05 s, then 0.5 s). */
export async function pollInvocation(
  client: HttpxClient,
  invocation: Json,
  interval = 0.5,
  firstInterval = 0.05,
): Promise<Json> {
  let firstTime = true;
  let current = invocation;
  while (ACTION_RUNNING_KEYWORDS.includes(current.status as string)) {
    await sleep(firstTime ? firstInterval : interval);
    const response = await client.get(invocationHref(current));
    if (response.isError) {
      let message: unknown;
      try {
        message = (response.json() as Json).detail ?? response.text;
      } catch {
        message = response.text;
      }
      throw new ServerActionError(
        `The server returned error ${response.status} while polling action '${current.action}' with id '${current.id}'. The error message was:\n${message}.`,
      );
    }
    current = response.json() as Json;
    firstTime = false;
  }
  return current;
}

/** blob:145 `RemoteBlobData` inside a `Blob`: the bytes are a GET of `href` by the same client. */
export class RemoteBlob {
  constructor(
    readonly mediaType: string,
    readonly href: string,
    private readonly client: HttpxClient,
  ) {}

  /** blob:219-221: `self._client.get(self._href).content`, no status check. */
  async content(): Promise<Buffer> {
    return (await this.client.get(this.href)).content;
  }
}

/**
 * A `ThingClient` subclass as `from_url` builds it (client:271, client:294): one entry per
 * TD property and action. Attribute access becomes `get`/`set`/`call` by name.
 */
export class UpstreamThingClient {
  readonly server: string;
  readonly path: string;
  readonly client: HttpxClient;
  readonly properties: Record<string, Json>;
  readonly actions: Record<string, Json>;

  /** client:142 */
  constructor(baseUrl: string, td: Json, client?: HttpxClient) {
    const parsed = new URL(baseUrl);
    this.server = `${parsed.protocol}//${parsed.host}`;
    this.path = parsed.pathname;
    this.client = client ?? new HttpxClient({ baseUrl: this.server });
    // client:321-324: a KeyError if the TD lacks either member.
    if (!("properties" in td) || !("actions" in td)) throw new Error("KeyError: properties");
    this.properties = td.properties as Record<string, Json>;
    this.actions = td.actions as Record<string, Json>;
  }

  /** client:271 `from_url`: GET the TD (with `client`, else httpx2's module-level `get`). */
  static async fromUrl(thingUrl: string, client?: HttpxClient): Promise<UpstreamThingClient> {
    const tdClient = client ?? new HttpxClient();
    const response = await tdClient.get(thingUrl);
    if (response.isError) throw new HTTPStatusError(`${response.status} for ${thingUrl}`);
    return new UpstreamThingClient(thingUrl, response.json() as Json, client);
  }

  /** `thing.<name>` (client:369 → client:157 `get_property`). */
  async get(name: string): Promise<unknown> {
    if (!(name in this.properties)) throw new Error(`AttributeError: ${name}`);
    if (this.properties[name]!.writeOnly) {
      throw new ClientPropertyError("This property may not be read.");
    }
    const response = await this.client.get(urljoin(this.path, name));
    if (response.isError) {
      const detail = (response.json() as Json).detail;
      const errMsg = typeof detail === "string" ? detail : "Unknown error";
      throw new ClientPropertyError(`Failed to get property ${name}: ${errMsg}`);
    }
    return response.json();
  }

  /** `thing.<name> = value` (client:392 → client:176 `set_property`). */
  async set(name: string, value: unknown): Promise<void> {
    if (!(name in this.properties)) throw new Error(`AttributeError: ${name}`);
    if (this.properties[name]!.readOnly) {
      throw new ClientPropertyError("This property may not be set.");
    }
    const response = await this.client.put(urljoin(this.path, name), value);
    if (response.isError) {
      const detail = (response.json() as Json).detail;
      let errMsg = "Unknown error";
      if (typeof detail === "string") errMsg = detail;
      else if (Array.isArray(detail) && detail.length > 0 && typeof detail[0] === "object") {
        errMsg = ((detail[0] as Json).msg as string | undefined) ?? "Unknown error";
      }
      throw new ClientPropertyError(`Failed to set property ${name}: ${errMsg}`);
    }
  }

  /** `thing.<action>(**kwargs)` (client:425 → client:198 `invoke_action`). */
  async call(name: string, kwargs: Json = {}): Promise<unknown> {
    if (!(name in this.actions)) throw new Error(`AttributeError: ${name}`);
    const response = await this.client.post(urljoin(this.path, name), kwargs);
    if (response.isError) {
      throw new FailedToInvokeActionError(failedToInvokeMessage(name, response));
    }
    const invocation = await pollInvocation(this.client, response.json() as Json);
    if (invocation.status === "completed") {
      if (!("output" in invocation)) throw new Error("KeyError: 'output'");
      const output = invocation.output;
      // client:239-250
      if (
        typeof output === "object" &&
        output !== null &&
        !Array.isArray(output) &&
        "href" in output &&
        "media_type" in output
      ) {
        const blob = output as { href: string; media_type: string };
        return new RemoteBlob(blob.media_type, blob.href, this.client);
      }
      return output;
    }
    throw invocationError(invocation);
  }

  /** client:256 `follow_link`: GET a link of an invocation by `rel`, raising for status. */
  async followLink(invocation: Json, rel: string): Promise<HttpxResponse> {
    const response = await this.client.get(getLink(invocation, rel).href as string);
    if (response.isError) throw new HTTPStatusError(`${response.status} for ${rel}`);
    return response;
  }
}

/** client:463 `_construct_failed_to_invoke_message` */
function failedToInvokeMessage(path: string, response: HttpxResponse): string {
  let message = `Unknown error when invoking action ${path}`;
  const details = ((response.json() as Json).detail ?? []) as unknown;
  if (typeof details === "string") message = `Error when invoking action ${path}: ${details}`;
  if (Array.isArray(details) && details.length > 0 && typeof details[0] === "object") {
    const first = details[0] as Json;
    const loc = (first.loc ?? []) as unknown[];
    const locStr = loc.length < 2 ? "" : `'${loc[1]}' - `;
    message = `Error when invoking action ${path}: ${locStr}${first.msg ?? "Unknown Error"}`;
  }
  return message;
}

/**
 * pydantic's `ProblemDetails.model_validate` (problem_details.py): an object whose
 * `detail`, `type`, `title`, `instance` are strings or null and `status` an integer or
 * null (extra members allowed); anything else is a ValidationError (undefined here).
 */
function problemDetails(value: unknown): Json | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const pd = value as Json;
  for (const key of ["detail", "type", "title", "instance"]) {
    if (pd[key] !== undefined && pd[key] !== null && typeof pd[key] !== "string") return undefined;
  }
  if (pd.status !== undefined && pd.status !== null && !Number.isInteger(Number(pd.status))) {
    return undefined;
  }
  return pd;
}

/** client:484 `_invocation_error`: the exception a finished, not completed invocation raises. */
export function invocationError(invocation: Json): Error {
  const invId = invocation.id;
  const actionName = String(invocation.action).split("/").at(-1);
  let errMessage = "Unknown error";
  const log = (invocation.log ?? []) as Json[];
  const lastLog = log.length > 0 ? log.at(-1) : undefined;
  let traceback: string | undefined;
  if (lastLog) {
    errMessage = (lastLog.message as string | undefined) ?? errMessage;
    const exceptionType = lastLog.exception_type;
    if (exceptionType !== undefined && exceptionType !== null) {
      errMessage = `[${exceptionType}]: ${errMessage}`;
    }
    traceback = (lastLog.traceback as string | null | undefined) ?? undefined;
  }
  const pd = problemDetails(invocation.error ?? null);
  if (pd) {
    if (pd.type === docsUrl("GlobalLockBusyError")) {
      return new GlobalLockBusyError(String(pd.detail ?? "None"));
    }
    if (pd.type === docsUrl("InvocationCancelledError")) {
      return new InvocationCancelledError(String(pd.detail ?? "None"));
    }
    if (pd.detail) errMessage = pd.detail as string;
    if (pd.title) errMessage = `[${pd.title}]: ${errMessage}`;
  }
  if (traceback !== undefined) {
    errMessage += "\n\nSERVER TRACEBACK START:\n\n";
    errMessage += traceback;
    errMessage += "\n\nSERVER TRACEBACK END\n\n";
  }
  return new ServerActionError(
    `Action ${actionName} (ID: ${invId}) failed with error:\n${errMessage}`,
  );
}

/** What a call raised (undefined if it returned): `pytest.raises` without the assertion. */
export function raised(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** The invocation a client follows: the id in its first poll after request number `from`. */
export function polledInvocationId(client: HttpxClient, from: number): Promise<string> {
  return until(() => {
    const poll = client.requests.slice(from).find((r) => r.method === "GET");
    return poll && new URL(poll.url).pathname.split("/").at(-1);
  }, "the client's first poll of its invocation");
}
