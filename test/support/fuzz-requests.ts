/**
 * Random HTTP/1.1 requests for the fuzz test, built from a live server's Thing
 * Descriptions (real affordance paths; bodies valid for their schemas or just outside
 * them) and from noise (junk methods, mangled paths, odd headers, broken bodies).
 * `serializeRequest` turns one into the exact bytes sent on a raw socket, so malformed
 * HTTP reaches the server as it is.
 *
 * @example
 * ```ts
 * const surface = surfaceFromDescriptions(await getJson(`${base}/thing_descriptions/`), base);
 * fc.sample(fuzzRequest(surface), 1)[0]; // { method: "PUT", target: "/stage/speed", … }
 * ```
 */
import fc from "fast-check";
import { anyJson, type DataSchema, nearMiss, validValue } from "./schema-arbitraries.js";

/** A path a Thing Description leads to, and the schema of what it accepts, if any. */
export interface FuzzTarget {
  path: string;
  /** Property value (PUT), action input (POST), or writemultipleproperties object. */
  schema?: DataSchema;
}

/** One operation a TD form describes: method, path, and the schema of its body. */
export interface FormCall {
  method: string;
  path: string;
  /** An SSE form (`subprotocol: "sse"`) or a stream link: sent with that Accept. */
  accept?: string;
  /** What the body must match (writeproperty, invokeaction, writemultipleproperties). */
  schema?: DataSchema;
}

/** Everything the generator draws real paths and ids from. */
export interface HttpSurface {
  targets: FuzzTarget[];
  calls: FormCall[];
  /** Ids of invocations that exist (finished), for `/action_invocations/{id}`. */
  invocationIds: string[];
  /** Ids of blobs that exist, for `/blobs/{id}`. */
  blobIds: string[];
}

interface FormLike {
  href: string;
  op?: string[];
  subprotocol?: string;
  "htv:methodName"?: string;
}

interface AffordanceLike extends DataSchema {
  readOnly?: boolean;
  input?: DataSchema;
  forms?: FormLike[];
}

interface DescriptionLike {
  properties?: Record<string, AffordanceLike>;
  actions?: Record<string, AffordanceLike>;
  events?: Record<string, AffordanceLike>;
  links?: { href: string; type?: string }[];
  forms?: FormLike[];
}

/** Every path the TDs name (forms and links), with schemas; plus the server-wide routes. */
export function surfaceFromDescriptions(
  descriptions: Record<string, DescriptionLike>,
  base: string,
): HttpSurface {
  const targets = new Map<string, FuzzTarget>();
  const calls: FormCall[] = [];
  /** A form as a call; its schema only goes with the methods that send a body. */
  const call = (form: FormLike, thingBase: string, schema?: DataSchema) => {
    if (form.href.includes("{")) return;
    const method = form["htv:methodName"] ?? "GET";
    const path = new URL(form.href, thingBase).pathname;
    const sends = method === "PUT" || method === "POST";
    calls.push({
      method,
      path,
      ...(form.subprotocol === "sse" ? { accept: "text/event-stream" } : {}),
      ...(sends ? { schema: schema ?? {} } : {}),
    });
  };
  const add = (href: string, schema?: DataSchema) => {
    if (href.includes("{")) return; // URI templates (queryaction): ids come from the server
    const path = new URL(href, `${base}/`).pathname;
    const known = targets.get(path);
    targets.set(path, { path, schema: schema ?? known?.schema });
  };
  for (const [name, td] of Object.entries(descriptions)) {
    const thingBase = `${base}/${name}/`;
    add(thingBase);
    calls.push({ method: "GET", path: new URL(thingBase).pathname });
    const writable: Record<string, DataSchema> = {};
    for (const [property, affordance] of Object.entries(td.properties ?? {})) {
      const { forms, readOnly, ...schema } = affordance;
      if (!readOnly) writable[property] = schema;
      for (const form of forms ?? []) {
        add(new URL(form.href, thingBase).href, schema);
        call(form, thingBase, schema);
      }
    }
    for (const affordance of Object.values(td.actions ?? {})) {
      for (const form of affordance.forms ?? []) {
        add(new URL(form.href, thingBase).href, affordance.input ?? {});
        call(form, thingBase, affordance.input);
      }
    }
    for (const affordance of Object.values(td.events ?? {})) {
      for (const form of affordance.forms ?? []) {
        add(new URL(form.href, thingBase).href);
        call(form, thingBase);
      }
    }
    for (const link of td.links ?? []) {
      const href = new URL(link.href, thingBase);
      add(href.href);
      calls.push({ method: "GET", path: href.pathname, accept: link.type });
    }
    const allWritable: DataSchema = {
      type: "object",
      properties: writable,
      additionalProperties: false,
    };
    for (const form of td.forms ?? []) {
      add(new URL(form.href, thingBase).href, allWritable);
      call(form, thingBase, allWritable);
    }
    add(`${base}/${name}/properties`, allWritable);
    add(`${base}/${name}/ws`);
  }
  for (const path of ["/", "/things/", "/thing_descriptions/", "/action_invocations/"]) {
    add(`${base}${path}`);
  }
  add(`${base}/openapi.json`);
  add(`${base}/docs`);
  return { targets: [...targets.values()], calls, invocationIds: [], blobIds: [] };
}

/** How the body is framed on the wire. */
export type Framing =
  /** Content-Length equal to the body (or no header and no body). */
  | "length"
  | "chunked"
  /** Content-Length one or more bytes short: the rest reads as a second request. */
  | "short"
  /** Both Content-Length and Transfer-Encoding: chunked (request smuggling shape). */
  | "both";

export interface FuzzRequest {
  method: string;
  /** The request target (path and query) as sent, UTF-8. */
  target: string;
  /** "default" is `Host: 127.0.0.1:<port>`; "missing" sends none. */
  host: "default" | "missing" | string;
  /** Headers besides Host, Content-Length and Transfer-Encoding, latin1. */
  headers: [string, string][];
  body: Buffer | undefined;
  framing: Framing;
  /** The request path before any query, for matching schemas (for reports). */
  schemaPath: string;
}

/** Whether every byte of the request belongs to one request (no smuggled second one). */
export function isSingleRequest(request: FuzzRequest): boolean {
  return request.framing === "length" || request.framing === "chunked";
}

/** The request's bytes exactly as the raw socket sends them. */
export function serializeRequest(request: FuzzRequest, port: number): Buffer {
  const lines = [`${request.method} ${request.target} HTTP/1.1`];
  if (request.host === "default") lines.push(`Host: 127.0.0.1:${port}`);
  else if (request.host !== "missing") lines.push(`Host: ${request.host}`);
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  const body = request.body ?? Buffer.alloc(0);
  let payload = body;
  switch (request.framing) {
    case "length":
      if (request.body !== undefined) lines.push(`Content-Length: ${body.length}`);
      break;
    case "short":
      lines.push(`Content-Length: ${Math.max(0, body.length - 1 - (body.length % 3))}`);
      break;
    case "chunked":
    case "both":
      if (request.framing === "both") lines.push(`Content-Length: ${body.length}`);
      lines.push("Transfer-Encoding: chunked");
      payload = chunked(body);
      break;
  }
  const head = Buffer.from(lines[0]!, "utf8");
  const rest = Buffer.from(`\r\n${lines.slice(1).join("\r\n")}\r\n\r\n`, "latin1");
  const headers = lines.length > 1 ? rest : Buffer.from("\r\n\r\n", "latin1");
  return Buffer.concat([head, headers, payload]);
}

function chunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; at += 7) {
    const piece = body.subarray(at, at + 7);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

// ─── methods ────────────────────────────────────────────────────────────────────────

const METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];
/** Methods Node parses but no route serves, lower case, unknown tokens, broken lines. */
const ODD_METHODS = [
  "PROPFIND",
  "TRACE",
  "M-SEARCH",
  "PURGE",
  "LINK",
  "CONNECT",
  "get",
  "FOO",
  "BREW",
  "G ET",
  "",
  "GET\x00",
];

const method = fc.oneof(
  { arbitrary: fc.constantFrom(...METHODS), weight: 12 },
  { arbitrary: fc.constantFrom(...ODD_METHODS), weight: 1 },
  { arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/), weight: 1 },
);

// ─── paths ──────────────────────────────────────────────────────────────────────────

const segmentNoise = fc.oneof(
  fc.constantFrom(
    "..",
    ".",
    "%2e%2e",
    "%2E%2e%2f",
    "%",
    "%zz",
    "%00",
    "%2F",
    "%C0%AE",
    "~",
    "*",
    "properties",
    "actions",
    "events",
    "snapshot",
    "stats",
    "ws",
    "__proto__",
    "constructor",
  ),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }).map(encodeURIComponent),
  // Raw UTF-8 in the request line, not percent-encoded.
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 4 }),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
);

function percentEncodeSome(path: string, picks: boolean[]): string {
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    out += c !== "/" && picks[i % picks.length] ? `%${c.charCodeAt(0).toString(16)}` : c;
  }
  return out;
}

function pathArbitrary(surface: HttpSurface): fc.Arbitrary<{ path: string; schemaPath: string }> {
  const real = fc.constantFrom(...surface.targets.map((t) => t.path));
  const same = (path: string) => ({ path, schemaPath: path });
  const mangled = (schemaPath: string, path: string) => ({ path, schemaPath });
  const uuid = fc.uuid();
  const junkId = fc.oneof(uuid, fc.stringMatching(/^[A-Za-z0-9_-]{0,64}$/), segmentNoise);
  return fc.oneof(
    { arbitrary: real.map(same), weight: 20 },
    {
      arbitrary: fc
        .tuple(real, fc.constantFrom("/", "//", "/snapshot", "/stats", "/x"))
        .map(([p, suffix]) => mangled(p, p.replace(/\/$/, "") + suffix)),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(real, segmentNoise)
        .map(([p, noise]) => mangled(p, `${p.replace(/\/$/, "")}/${noise}`)),
      weight: 2,
    },
    {
      // A prefix of a real path.
      arbitrary: fc
        .tuple(real, fc.nat())
        .map(([p, n]) => mangled(p, p.slice(0, n % p.length) || "/")),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(real, fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }))
        .map(([p, picks]) => mangled(p, percentEncodeSome(p, picks))),
      weight: 2,
    },
    {
      // `..` and `.` segments, which must never escape a route.
      arbitrary: fc
        .tuple(real, fc.constantFrom("/..", "/../..", "/.", "/%2e%2e", "/./..//"))
        .map(([p, dots]) => mangled(p, `${p.replace(/\/$/, "")}${dots}${p}`)),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(real, fc.constantFrom(300, 5000, 9000, 17_000))
        .map(([p, n]) => mangled(p, `${p.replace(/\/$/, "")}/${"a".repeat(n)}`)),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom(...(surface.invocationIds.length > 0 ? surface.invocationIds : ["none"]))
        .map((id) => same(`/action_invocations/${id}`)),
      weight: 3,
    },
    { arbitrary: junkId.map((id) => same(`/action_invocations/${id}`)), weight: 2 },
    {
      arbitrary: fc
        .constantFrom(...(surface.blobIds.length > 0 ? surface.blobIds : ["none"]))
        .map((id) => same(`/blobs/${id}`)),
      weight: 2,
    },
    { arbitrary: junkId.map((id) => same(`/blobs/${id}`)), weight: 1 },
    {
      // Odd request targets: asterisk-form, empty, absolute-form, no leading slash.
      arbitrary: fc
        .constantFrom("*", "", "http://127.0.0.1/stage/", "stage/speed", "/%", "//")
        .map(same),
      weight: 1,
    },
  );
}

const query = fc.oneof(
  { arbitrary: fc.constant(""), weight: 12 },
  { arbitrary: fc.constantFrom("?advance_headers=1", "?", "?advance_headers=yes&&"), weight: 2 },
  {
    arbitrary: fc
      .array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 })), {
        minLength: 1,
        maxLength: 3,
      })
      .map(
        (pairs) =>
          `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`,
      ),
    weight: 2,
  },
  {
    arbitrary: fc.stringMatching(/^[A-Za-z0-9._~-]{0,40}$/).map((t) => `?access_token=${t}`),
    weight: 1,
  },
  { arbitrary: fc.constantFrom("?%%%", "?a=%zz", "?a[b]=1&a[c]=2", "?a=1&a=2"), weight: 1 },
  { arbitrary: fc.constantFrom(4000, 9000).map((n) => `?q=${"b".repeat(n)}`), weight: 1 },
);

// ─── headers ────────────────────────────────────────────────────────────────────────

const ACCEPTS = [
  "*/*",
  "application/json",
  "application/td+json",
  "application/problem+json",
  "text/event-stream",
  "text/event-stream;q=0",
  "multipart/x-mixed-replace",
  "multipart/x-mixed-replace;boundary=frame, image/jpeg",
  "image/jpeg",
  "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "application/xml",
  "",
  ";;;",
  "text/event-stream, application/json;q=0.5",
];

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/JSON",
  "application/json; charset=latin1",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/merge-patch+json",
  "application/octet-stream",
  "a/b/c",
  "",
  "application/json;;",
];

const junkValue = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, "")),
  // latin1 bytes above 0x7f (obs-text) and control characters.
  fc.constantFrom("\x80\xff\xfe", "a\x01b", "tab\there", "\x7f"),
  fc.constantFrom(300, 20_000).map((n) => "v".repeat(n)),
);

/** Absent most of the time: a request carries a few odd headers, not all of them. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, weight = 2): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary, weight });
}

const optionalHeaders = fc.record({
  accept: sometimes(fc.oneof(fc.constantFrom(...ACCEPTS), junkValue), 8),
  contentType: sometimes(
    fc.oneof(
      { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 5 },
      { arbitrary: junkValue, weight: 1 },
    ),
    6,
  ),
  authorization: sometimes(
    fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._~+/-]{0,40}$/).map((t) => `Bearer ${t}`),
      fc.constantFrom("Bearer", "Basic dXNlcjpwYXNz", "bearer  x", ""),
      junkValue,
    ),
  ),
  range: sometimes(
    fc.oneof(
      fc.constantFrom(
        "bytes=0-10",
        "bytes=-5",
        "bytes=5-",
        "bytes=10-5",
        "bytes=0-0,2-3",
        "bytes=abc",
        "items=0-1",
        "bytes=99999999999999999999-",
      ),
      junkValue,
    ),
  ),
  lastEventId: sometimes(
    fc.oneof(fc.nat().map(String), fc.constantFrom("-1", "1e9", "99999999999999999999")),
  ),
  origin: sometimes(fc.constantFrom("http://evil.example", "null", "http://127.0.0.1:1")),
  expect: sometimes(fc.constantFrom("100-continue", "100-continue", "nonsense")),
  upgrade: sometimes(fc.constant(true), 1),
  contentEncoding: sometimes(fc.constantFrom("gzip", "deflate", "identity", "br"), 1),
  junk: fc.oneof(
    { arbitrary: fc.constant([]), weight: 4 },
    {
      arbitrary: fc.array(
        fc.tuple(
          fc.oneof(
            fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/),
            fc.constantFrom("Bad Name", "Colon:Name", "x\x00y", "Ä"),
          ),
          junkValue,
        ),
        { minLength: 1, maxLength: 3 },
      ),
      weight: 1,
    },
  ),
});

type OptionalHeaders = typeof optionalHeaders extends fc.Arbitrary<infer T> ? T : never;

function headerList(h: OptionalHeaders, connection: string | undefined): [string, string][] {
  const list: [string, string][] = [];
  if (h.accept !== undefined) list.push(["Accept", h.accept]);
  if (h.contentType !== undefined) list.push(["Content-Type", h.contentType]);
  if (h.authorization !== undefined) list.push(["Authorization", h.authorization]);
  if (h.range !== undefined) list.push(["Range", h.range]);
  if (h.lastEventId !== undefined) list.push(["Last-Event-ID", h.lastEventId]);
  if (h.origin !== undefined) list.push(["Origin", h.origin]);
  if (h.expect !== undefined) list.push(["Expect", h.expect]);
  if (h.contentEncoding !== undefined) list.push(["Content-Encoding", h.contentEncoding]);
  for (const header of h.junk) list.push(header);
  if (h.upgrade) {
    list.push(
      ["Upgrade", "websocket"],
      ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
      ["Sec-WebSocket-Version", "13"],
    );
    list.push(["Connection", "Upgrade"]);
  } else if (connection !== undefined) list.push(["Connection", connection]);
  return list;
}

// ─── bodies ─────────────────────────────────────────────────────────────────────────

/** Nested arrays or objects `depth` deep. */
function nested(depth: number, kind: "array" | "object"): string {
  return kind === "array"
    ? `${"[".repeat(depth)}1${"]".repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value) ?? "null");

function bodyArbitrary(schema: DataSchema | undefined): fc.Arbitrary<Buffer | undefined> {
  const typed = schema ?? {};
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 6 },
    { arbitrary: validValue(typed).map(json), weight: 8 },
    { arbitrary: nearMiss(typed).map(json), weight: 6 },
    { arbitrary: anyJson.map(json), weight: 2 },
    {
      arbitrary: fc
        .tuple(
          fc.constantFrom(33, 1000, 100_000),
          fc.constantFrom("array" as const, "object" as const),
        )
        .map(([depth, kind]) => Buffer.from(nested(depth, kind))),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom(
          "1e400",
          "-1e400",
          "123456789012345678901234567890",
          "1e-400",
          "-0",
          '{"x":1e308,"y":-1e308,"z":1e400}',
          '{"width":1e400,"height":48}',
          "9007199254740993",
        )
        .map((text) => Buffer.from(text)),
      weight: 2,
    },
    {
      arbitrary: fc
        .constantFrom(
          "{",
          "[1,]",
          "'x'",
          "{a:1}",
          "1 2",
          "NaN",
          "Infinity",
          "\ufeff1",
          '"\\ud800"',
          '{"__proto__":{"polluted":1}}',
          '{"constructor":{"prototype":{"polluted":1}}}',
          "nul",
          "\u0000",
        )
        .map((text) => Buffer.from(text)),
      weight: 2,
    },
    { arbitrary: fc.constant(Buffer.alloc(0)), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)), weight: 1 },
    // Past the 1 MiB body limit.
    { arbitrary: fc.constant(Buffer.alloc(1024 * 1024 + 10, 0x31)), weight: 1 },
  );
}

// ─── requests ───────────────────────────────────────────────────────────────────────

/**
 * One random request against `surface`: mostly an operation a TD form describes, sent
 * as a client would (its method, JSON, a body valid for the schema or just outside it)
 * with a little noise; otherwise noise throughout.
 */
export function fuzzRequest(surface: HttpSurface): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { arbitrary: formRequest(surface), weight: 3 },
    { arbitrary: noiseRequest(surface), weight: 2 },
  );
}

const noHeaders: OptionalHeaders = {
  accept: undefined,
  contentType: undefined,
  authorization: undefined,
  range: undefined,
  lastEventId: undefined,
  origin: undefined,
  expect: undefined,
  upgrade: undefined,
  contentEncoding: undefined,
  junk: [],
};

function formRequest(surface: HttpSurface): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...surface.calls).chain((call) =>
    fc
      .record({
        body: call.schema
          ? fc.oneof(
              { arbitrary: validValue(call.schema).map(json), weight: 5 },
              { arbitrary: nearMiss(call.schema).map(json), weight: 4 },
              { arbitrary: bodyArbitrary(call.schema), weight: 1 },
            )
          : fc.oneof(
              { arbitrary: fc.constant(undefined), weight: 8 },
              { arbitrary: bodyArbitrary(undefined), weight: 1 },
            ),
        contentType: fc.oneof(
          { arbitrary: fc.constant("application/json"), weight: 8 },
          { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 1 },
        ),
        // Noise on top of a sensible request: now and then, a few odd headers.
        noise: fc.oneof(
          { arbitrary: fc.constant(noHeaders), weight: 3 },
          { arbitrary: optionalHeaders, weight: 1 },
        ),
        query: fc.oneof({ arbitrary: fc.constant(""), weight: 6 }, { arbitrary: query, weight: 1 }),
      })
      .map(({ body, contentType, noise, query: q }): FuzzRequest => {
        const headers: OptionalHeaders = {
          ...noise,
          accept: noise.accept ?? call.accept ?? "application/json",
          contentType: body === undefined ? noise.contentType : (noise.contentType ?? contentType),
        };
        return {
          method: call.method,
          target: call.path + q,
          host: "default",
          headers: headerList(headers, "close"),
          body,
          framing: "length",
          schemaPath: call.path,
        };
      }),
  );
}

function noiseRequest(surface: HttpSurface): fc.Arbitrary<FuzzRequest> {
  const schemas = new Map(surface.targets.map((t) => [t.path, t.schema]));
  return fc
    .record({
      method,
      path: pathArbitrary(surface),
      query,
      host: fc.oneof(
        { arbitrary: fc.constant("default"), weight: 30 },
        { arbitrary: fc.constantFrom("missing", "", "evil.example", "127.0.0.1:1, x"), weight: 1 },
      ),
      headers: optionalHeaders,
      connection: fc.oneof(
        { arbitrary: fc.constant("close"), weight: 10 },
        { arbitrary: fc.constantFrom(undefined, "keep-alive", "nonsense"), weight: 1 },
      ),
      framing: fc.oneof(
        { arbitrary: fc.constant<Framing>("length"), weight: 20 },
        { arbitrary: fc.constant<Framing>("chunked"), weight: 2 },
        { arbitrary: fc.constantFrom<Framing>("short", "both"), weight: 1 },
      ),
    })
    .chain((parts) =>
      bodyArbitrary(schemas.get(parts.path.schemaPath)).map(
        (body): FuzzRequest => ({
          method: parts.method,
          target: parts.path.path + parts.query,
          host: parts.host,
          headers: headerList(parts.headers, parts.connection),
          body,
          framing: body === undefined && parts.framing === "short" ? "length" : parts.framing,
          schemaPath: parts.path.schemaPath,
        }),
      ),
    );
}
