/**
 * Every Thing Description the server serves is valid, as judged by software nobody on
 * this project wrote: the official W3C TD 1.1 JSON Schema (ajv), then the Thingweb
 * playground's validator and assertion tester. On top, the parts of the HTTP API
 * contract (design/http-api.md) that the schema does not enforce.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  property,
  Thing,
  type ThingDescription,
  type ThingEntry,
  ThingServer,
  Type,
} from "../src/index.js";
import { getJson } from "./support/json-http.js";
import { microscopeEntries } from "./support/microscope.js";

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
const require = createRequire(import.meta.url);

const TD_CONTEXT = "https://www.w3.org/2022/wot/td/v1.1";
const TD_SCHEMA_PATH = require.resolve(
  "wot-thing-description-types/schema/td-json-schema-validation.json",
);

// ---------- the Things under test ----------

const Settings = Type.Object(
  {
    averaging: Type.Integer({ minimum: 1, maximum: 64, description: "Frames averaged" }),
    autoExposure: Type.Boolean(),
    region: Type.Object(
      { x: Type.Integer(), y: Type.Integer(), width: Type.Integer({ minimum: 1 }) },
      { additionalProperties: false },
    ),
    tags: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);

/** One property of every flavour the model supports. */
class TestBench extends Thing {
  static override title = "Test bench";
  static override description = "A Thing with one property of every flavour, for TD validation.";

  @property({
    schema: Type.Number({ unit: "°C" }),
    readOnly: true,
    title: "Temperature",
    description: "Bench temperature (read-only, stored).",
  })
  accessor temperature = 21.5;

  @property({
    schema: Type.String({ minLength: 4 }),
    writeOnly: true,
    title: "Access code",
    description: "Write-only: clients may set it but never read it.",
  })
  accessor accessCode = "0000";

  #gain = 2;
  @property({
    schema: Type.Number({ minimum: 0, maximum: 10 }),
    title: "Gain",
    description: "Computed, with a setter: readable and writable.",
  })
  get gain(): number {
    return this.#gain;
  }
  set gain(value: number) {
    this.#gain = value;
  }

  @property({
    schema: Type.Number(),
    title: "Doubled gain",
    description: "Computed without a setter: read-only.",
  })
  get doubledGain(): number {
    return this.#gain * 2;
  }

  @property({ schema: Settings, title: "Settings", description: "An object-valued property." })
  accessor settings = {
    averaging: 4,
    autoExposure: true,
    region: { x: 0, y: 0, width: 100 },
    tags: ["a", "b"],
  };

  @property({
    schema: Type.Union([Type.Literal("idle"), Type.Literal("busy"), Type.Literal("error")]),
    title: "Mode",
    description: "An enumeration of strings.",
  })
  accessor mode: "idle" | "busy" | "error" = "idle";

  @property({
    schema: Type.String({ enum: ["red", "green", "blue"] }),
    title: "Channel",
    description: "A string with a JSON Schema enum.",
  })
  accessor channel = "green";

  @property({ schema: Type.String({ maxLength: 64 }), name: "bench_label", title: "Label" })
  accessor label = "bench 1";
}

/** Nothing writable: its TD must not offer writemultipleproperties. */
class ReadOnlySensor extends Thing {
  static override title = "Read-only sensor";

  @property({ schema: Type.Number(), readOnly: true, title: "Reading" })
  accessor reading = 1.5;

  @property({ schema: Type.Boolean(), title: "Healthy" })
  get healthy(): boolean {
    return true;
  }
}

const entries = (): ThingEntry[] => [
  ...microscopeEntries(),
  { name: "bench", thing: new TestBench() },
  { name: "sensor", thing: new ReadOnlySensor() },
];
const NAMES = ["stage", "camera", "bench", "sensor"] as const;

// ---------- validators ----------

interface AssertionResult {
  ID: string;
  Status: string;
  Comment?: string;
  Assertion?: string;
}
interface ValidatorReport {
  report: Record<"json" | "schema" | "defaults" | "jsonld" | "additional", string | null>;
  details: Record<string, string | null>;
  detailComments: Record<string, string>;
}
type LogFunc = (...args: unknown[]) => void;
const playgroundAssertions = require("@thing-description-playground/assertions") as {
  tdAssertions(
    tds: string[],
    fileLoader: (path: string) => Promise<string>,
    logFunc?: LogFunc,
  ): Promise<AssertionResult[]>;
};
const playgroundCore = require("@thing-description-playground/core") as {
  tdValidator(
    td: string,
    logFunc: LogFunc,
    options: { checkDefaults?: boolean; checkJsonLd?: boolean; checkTmConformance?: boolean },
  ): Promise<ValidatorReport>;
};

/** The official W3C TD 1.1 JSON Schema, compiled once. */
function officialValidator(): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(readFileSync(TD_SCHEMA_PATH, "utf8")) as object);
}

function formatErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`)
    .join("\n");
}

/** Errors of the official schema, as text; empty when the TD is valid. */
function schemaErrors(validate: ValidateFunction, td: unknown): string {
  return validate(td) ? "" : formatErrors(validate.errors);
}

/**
 * The playground's full schema (`td-schema-full.json`) wants every term that has a default
 * written out. Affordances carry theirs (readOnly, writeOnly, observable); the data schemas
 * nested in an object or array property are the user's own and may leave readOnly/writeOnly
 * at their default (false), as TD 1.1 allows. So: write those two defaults into the nested
 * schemas of a copy, and whatever the full schema still finds missing is reported.
 */
const fullSchemaValidator = (() => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(require("@thing-description-playground/core/td-schema-full.json") as object);
})();
function withNestedDefaults(schema: unknown): void {
  if (typeof schema !== "object" || schema === null) return;
  const nested: unknown[] = [];
  const s = schema as Record<string, unknown>;
  if (s.properties && typeof s.properties === "object") nested.push(...Object.values(s.properties));
  if (Array.isArray(s.items)) nested.push(...s.items);
  else if (s.items) nested.push(s.items);
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(s[key])) nested.push(...(s[key] as unknown[]));
  }
  for (const child of nested) {
    if (typeof child !== "object" || child === null) continue;
    const c = child as Record<string, unknown>;
    c.readOnly ??= false;
    c.writeOnly ??= false;
    withNestedDefaults(c);
  }
}
function defaultsGaps(td: ThingDescription): string[] {
  const copy = structuredClone(td);
  for (const affordance of Object.values(copy.properties ?? {})) withNestedDefaults(affordance);
  // Event data schemas too.
  for (const affordance of Object.values(copy.events ?? {}) as Record<string, unknown>[]) {
    const schema = affordance.data as Record<string, unknown> | undefined;
    if (!schema) continue;
    schema.readOnly ??= false;
    schema.writeOnly ??= false;
    withNestedDefaults(schema);
  }
  // Action inputs, outputs and URI variables are data schemas too, written by the user.
  for (const affordance of Object.values(copy.actions ?? {}) as Record<string, unknown>[]) {
    for (const key of ["input", "output"]) {
      const schema = affordance[key] as Record<string, unknown> | undefined;
      if (!schema) continue;
      schema.readOnly ??= false;
      schema.writeOnly ??= false;
      withNestedDefaults(schema);
    }
    for (const variable of Object.values(
      (affordance.uriVariables ?? {}) as Record<string, Record<string, unknown>>,
    )) {
      variable.readOnly ??= false;
      variable.writeOnly ??= false;
    }
  }
  return fullSchemaValidator(copy) ? [] : formatErrors(fullSchemaValidator.errors).split("\n");
}

/**
 * tdAssertions loads its schemas through the loader; it asks for core's `td-schema.json`
 * under its own node_modules, which npm hoists, so resolve that one through Node.
 */
async function loadFile(path: string): Promise<string> {
  const nested = "/node_modules/@thing-description-playground/core/";
  const at = path.indexOf(nested);
  if (at >= 0 && path.includes("/assertions/")) {
    return readFile(
      require.resolve(`@thing-description-playground/core/${path.slice(at + nested.length)}`),
      "utf8",
    );
  }
  return readFile(path, "utf8");
}

/** The playground's assertion tester on one TD (which must already pass the schema). */
async function assertionResults(td: ThingDescription): Promise<{
  results: AssertionResult[];
  log: string[];
}> {
  // A `rel: "type"` link would make it fetch a Thing Model over the network.
  expect((td.links ?? []).filter((link) => link.rel === "type")).toEqual([]);
  const log: string[] = [];
  const results = await playgroundAssertions.tdAssertions(
    [JSON.stringify(td)],
    loadFile,
    (...args) =>
      log.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")),
  );
  return { results, log };
}

// ---------- the contract the schema does not enforce ----------

type Forms = { op: unknown; href: unknown; contentType?: unknown }[];

const opsOf = (forms: Forms): string[] =>
  forms.flatMap((form) => (Array.isArray(form.op) ? form.op : [form.op])) as string[];

function checkContract(td: ThingDescription, expectedBase: string): void {
  expect(td["@context"]).toContain(TD_CONTEXT);
  expect(Array.isArray(td.profile) ? td.profile.length : td.profile).toBeTruthy();
  expect(td.securityDefinitions).toEqual({ nosec_sc: { scheme: "nosec" } });
  expect(td.security).toEqual(["nosec_sc"]);
  expect(td.base).toBe(expectedBase);
  expect(new URL(td.base).href).toBe(td.base);
  expect(td.base.endsWith("/")).toBe(true);

  const allForms: [string, Forms][] = [["top level", td.forms as Forms]];
  for (const kind of ["properties", "actions", "events"] as const) {
    for (const [name, affordance] of Object.entries(td[kind] ?? {})) {
      allForms.push([`${kind}.${name}`, affordance.forms as Forms]);
    }
  }
  for (const [where, forms] of allForms) {
    expect(forms, where).toBeInstanceOf(Array);
    expect(forms.length, where).toBeGreaterThan(0);
    for (const form of forms) {
      expect(form.op, where).toBeDefined();
      expect(opsOf([form]).length, where).toBeGreaterThan(0);
      expect(typeof form.href, where).toBe("string");
      expect(form.href, where).not.toBe("");
      expect(typeof form.contentType, where).toBe("string");
    }
  }

  const properties = Object.entries(td.properties ?? {});
  const topOps = opsOf(td.forms as Forms);
  expect(topOps).toContain("readallproperties");
  const anyWritable = properties.some(([, p]) => p.readOnly !== true);
  if (anyWritable) expect(topOps).toContain("writemultipleproperties");
  else expect(topOps).not.toContain("writemultipleproperties");

  // Observable properties add two SSE forms (HTTP SSE Profile) for observe/unobserve: the
  // first for node-wot (each message also unnamed), then the plain one.
  const observe = (p: { observable?: boolean }) =>
    p.observable === true ? ["observeproperty", "unobserveproperty"] : [];
  const sseHrefs = (name: string) => [`${name}?messages=both`, name];
  for (const [name, p] of properties) {
    const ops = [...new Set(opsOf(p.forms as Forms))].sort();
    if (p.readOnly === true) expect(ops, name).toEqual(["readproperty", ...observe(p)].sort());
    if (p.writeOnly === true) {
      expect(p.observable, name).toBe(false);
      expect(ops, name).toEqual(["writeproperty"]);
    }
    if (p.readOnly !== true && p.writeOnly !== true) {
      expect(ops, name).toEqual(["readproperty", "writeproperty", ...observe(p)].sort());
    }
    const observeForms = (p.forms as Forms).filter((f) => opsOf([f]).includes("observeproperty"));
    for (const form of observeForms) {
      expect(form, name).toMatchObject({
        subprotocol: "sse",
        contentType: "application/json",
        "htv:methodName": "GET",
      });
      expect(opsOf([form]), name).toContain("unobserveproperty");
    }
    expect(
      observeForms.map((f) => f.href),
      name,
    ).toEqual(p.observable === true ? sseHrefs(name) : []);
  }
  if (properties.some(([, p]) => p.observable === true)) {
    expect(topOps).toEqual(
      expect.arrayContaining(["observeallproperties", "unobserveallproperties"]),
    );
  }
  for (const [name, e] of Object.entries(td.events ?? {})) {
    const forms = e.forms as Forms;
    expect([...new Set(opsOf(forms))].sort(), name).toEqual(["subscribeevent", "unsubscribeevent"]);
    expect(
      forms.map((f) => f.href),
      name,
    ).toEqual(sseHrefs(name));
    for (const form of forms) expect(form, name).toMatchObject({ subprotocol: "sse" });
    expect(topOps).toEqual(expect.arrayContaining(["subscribeallevents", "unsubscribeallevents"]));
  }

  // Names are unique across all affordances (they share the Thing's URL space).
  const names = [
    ...Object.keys(td.properties ?? {}),
    ...Object.keys(td.actions ?? {}),
    ...Object.keys(td.events ?? {}),
  ];
  expect(new Set(names).size).toBe(names.length);
}

// ---------- the suite ----------

describe("Thing Descriptions served at the root", () => {
  const validate = officialValidator();
  let server: ThingServer;
  let baseUrl: string;
  let index: Record<string, string>;
  const tds = new Map<string, ThingDescription>();
  let all: Record<string, ThingDescription>;

  beforeAll(async () => {
    server = new ThingServer(entries(), { port: 0 });
    baseUrl = await server.start();
    index = (await getJson(`${baseUrl}/things/`)) as Record<string, string>;
    for (const [name, url] of Object.entries(index)) {
      const response = await fetch(url, { headers: { accept: "application/td+json" } });
      expect(response.status, url).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^application\/td\+json/);
      tds.set(name, (await response.json()) as ThingDescription);
    }
    all = (await getJson(`${baseUrl}/thing_descriptions/`)) as Record<string, ThingDescription>;
  });

  afterAll(async () => {
    await server?.close();
  });

  it("/things/ lists an absolute TD URL for every Thing", () => {
    expect(Object.keys(index).sort()).toEqual([...NAMES].sort());
    for (const [name, url] of Object.entries(index)) {
      expect(url).toBe(`${baseUrl}/${name}/`);
    }
  });

  it("/thing_descriptions/ holds the same TDs as the individual URLs, and each is valid", () => {
    expect(Object.keys(all).sort()).toEqual([...NAMES].sort());
    for (const [name, td] of Object.entries(all)) {
      expect(td).toEqual(tds.get(name));
      expect(schemaErrors(validate, td), `${name} in /thing_descriptions/`).toBe("");
    }
  });

  describe.each(NAMES)("TD of '%s'", (name) => {
    const td = () => {
      const found = tds.get(name);
      if (!found) throw new Error(`no TD fetched for '${name}'`);
      return found;
    };

    it("validates against the W3C TD 1.1 JSON Schema", () => {
      expect(schemaErrors(validate, td())).toBe("");
    });

    it("passes every Thingweb playground assertion", async () => {
      expect(schemaErrors(validate, td())).toBe("");
      const { results, log } = await assertionResults(td());
      expect(results.length).toBeGreaterThan(0);
      const failed = results.filter((r) => r.Status === "fail");
      expect(failed, log.join("\n")).toEqual([]);
      expect(results.filter((r) => r.Status === "pass").length).toBeGreaterThan(0);
    });

    it("passes the Thingweb playground validator (offline)", async () => {
      const log: string[] = [];
      const { report, details } = await playgroundCore.tdValidator(
        JSON.stringify(td()),
        (...args) => log.push(args.map(String).join(" ")),
        { checkDefaults: true, checkJsonLd: false, checkTmConformance: false },
      );
      const context = `${JSON.stringify({ report, details })}\n${log.join("\n")}`;
      expect(report.json, context).toBe("passed");
      expect(report.schema, context).toBe("passed");
      // "Defaults Validation" is the playground's optional stricter pass (a "warning", never
      // a failure): every term with a default written out. See defaultsGaps for what is allowed.
      expect(["passed", "warning"], context).toContain(report.defaults);
      expect(defaultsGaps(td()), context).toEqual([]);
      expect(report.additional, context).toBe("passed");
      for (const [check, outcome] of Object.entries(details)) {
        if (outcome !== null) expect(outcome, `${check}\n${context}`).toBe("passed");
      }
    });

    it("keeps the HTTP API contract", () => {
      checkContract(td(), `${baseUrl}/${name}/`);
    });
  });

  it("describes every property flavour of the test Thing as declared", () => {
    const td = tds.get("bench")!;
    expect(td.title).toBe("Test bench");
    expect(td.description).toBe(TestBench.description);
    const p = td.properties;
    expect(Object.keys(p).sort()).toEqual(
      [
        "accessCode",
        "bench_label",
        "channel",
        "doubledGain",
        "gain",
        "mode",
        "settings",
        "temperature",
      ].sort(),
    );
    for (const affordance of Object.values(p)) expect(affordance.title).toBeTypeOf("string");

    expect(p.temperature).toMatchObject({ type: "number", readOnly: true, writeOnly: false });
    expect(p.accessCode).toMatchObject({ type: "string", readOnly: false, writeOnly: true });
    expect(p.gain).toMatchObject({ readOnly: false, writeOnly: false, maximum: 10 });
    expect(p.doubledGain).toMatchObject({ readOnly: true, writeOnly: false });
    expect(p.settings).toMatchObject({ type: "object", required: expect.any(Array) });
    expect(p.channel).toMatchObject({ type: "string", enum: ["red", "green", "blue"] });
    expect(p.mode?.anyOf ?? p.mode?.oneOf ?? p.mode?.enum).toBeDefined();
    expect(p.bench_label?.forms).toEqual([
      expect.objectContaining({ href: "bench_label", op: ["readproperty"] }),
      expect.objectContaining({ href: "bench_label", op: ["writeproperty"] }),
      expect.objectContaining({
        href: "bench_label?messages=both",
        op: ["observeproperty", "unobserveproperty"],
        subprotocol: "sse",
      }),
      expect.objectContaining({
        href: "bench_label",
        op: ["observeproperty", "unobserveproperty"],
        subprotocol: "sse",
      }),
    ]);
    expect(p.temperature?.description).toBe("Bench temperature (read-only, stored).");
  });

  it("every readproperty form, resolved against base, answers 200", async () => {
    for (const [name, td] of tds) {
      for (const [prop, affordance] of Object.entries(td.properties)) {
        for (const form of affordance.forms as Forms) {
          if (!opsOf([form]).includes("readproperty")) continue;
          const url = new URL(form.href as string, td.base).href;
          const response = await fetch(url, { headers: { accept: "application/json" } });
          expect(response.status, `${name}.${prop} at ${url}`).toBe(200);
          await response.arrayBuffer();
        }
      }
    }
  });
});

describe("Thing Descriptions served under an API prefix", () => {
  const validate = officialValidator();
  const prefix = "/api/v1";
  let server: ThingServer;
  let baseUrl: string;
  const tds = new Map<string, ThingDescription>();

  beforeAll(async () => {
    server = new ThingServer(entries(), { port: 0, apiPrefix: prefix });
    baseUrl = await server.start();
    expect(baseUrl.endsWith(prefix)).toBe(true);
    const index = (await getJson(`${baseUrl}/things/`)) as Record<string, string>;
    for (const [name, url] of Object.entries(index)) {
      tds.set(name, (await getJson(url, "application/td+json")) as ThingDescription);
    }
  });

  afterAll(async () => {
    await server?.close();
  });

  it("serves every Thing under the prefix", () => {
    expect([...tds.keys()].sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)("TD of '%s' validates, with the prefix in base", async (name) => {
    const td = tds.get(name)!;
    expect(schemaErrors(validate, td)).toBe("");
    expect(td.base).toBe(`${baseUrl}/${name}/`);
    expect(new URL(td.base).pathname).toBe(`${prefix}/${name}/`);
    checkContract(td, `${baseUrl}/${name}/`);

    const { results, log } = await assertionResults(td);
    expect(
      results.filter((r) => r.Status === "fail"),
      log.join("\n"),
    ).toEqual([]);
  });

  it.each(NAMES)(
    "readproperty forms of '%s' resolve under the prefix and answer 200",
    async (name) => {
      const td = tds.get(name)!;
      let read = 0;
      for (const [prop, affordance] of Object.entries(td.properties)) {
        for (const form of affordance.forms as Forms) {
          if (!opsOf([form]).includes("readproperty")) continue;
          const url = new URL(form.href as string, td.base);
          expect(url.pathname.startsWith(`${prefix}/${name}/`)).toBe(true);
          // `base + href` as the TD spec resolves it, and plain concatenation agree.
          expect(url.href).toBe(td.base + (form.href as string));
          const response = await fetch(url, { headers: { accept: "application/json" } });
          expect(response.status, `${name}.${prop} at ${url}`).toBe(200);
          await response.arrayBuffer();
          read++;
        }
      }
      expect(read).toBeGreaterThan(0);
    },
  );
});

describe("Thing Descriptions with bearer authentication on", () => {
  const validate = officialValidator();
  let server: ThingServer;
  let baseUrl: string;

  beforeAll(async () => {
    server = new ThingServer(entries(), { port: 0, authToken: "td-test-token-0123456789" });
    baseUrl = await server.start();
  });

  afterAll(async () => {
    await server?.close();
  });

  it.each(NAMES)("TD of '%s' is public, declares bearer security and stays valid", async (name) => {
    const td = (await getJson(`${baseUrl}/${name}/`, "application/td+json")) as ThingDescription;
    expect(td.security).toEqual(["bearer_sc"]);
    expect(td.securityDefinitions.bearer_sc).toMatchObject({ scheme: "bearer", in: "header" });
    expect(schemaErrors(validate, td)).toBe("");
    const { results, log } = await assertionResults(td);
    expect(
      results.filter((r) => r.Status === "fail"),
      log.join("\n"),
    ).toEqual([]);
  });
});

/** The official schema, then every playground assertion. */
async function expectValid(validate: ValidateFunction, td: ThingDescription): Promise<void> {
  expect(schemaErrors(validate, td)).toBe("");
  const { results, log } = await assertionResults(td);
  expect(
    results.filter((r) => r.Status === "fail"),
    log.join("\n"),
  ).toEqual([]);
}

describe("Thing Descriptions with MQTT forms, and the server's own TD at /.well-known/wot", () => {
  const validate = officialValidator();
  let server: ThingServer;
  let baseUrl: string;

  beforeAll(async () => {
    // No broker is needed for the TDs: the binding retries in the background meanwhile.
    server = new ThingServer(entries(), {
      port: 0,
      authToken: "td-test-token-0123456789",
      mqtt: {
        url: "mqtt://127.0.0.1:1",
        topicPrefix: "lab/td-test",
        commands: true,
        username: "lab",
      },
    });
    baseUrl = await server.start();
  });

  afterAll(async () => {
    await server?.close();
  });

  it.each(NAMES)(
    "TD of '%s' with MQTT forms validates and passes every playground assertion",
    async (name) => {
      const td = (await getJson(`${baseUrl}/${name}/`, "application/td+json")) as ThingDescription;
      expect(td.id).toMatch(
        /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(td["@context"]).toContainEqual(
        expect.objectContaining({ mqv: "https://www.w3.org/2019/wot/mqtt#" }),
      );
      // HTTP stays the TD-wide default; MQTT forms name the broker's own scheme.
      expect(td.security).toEqual(["bearer_sc"]);
      expect(td.securityDefinitions.mqtt_broker_basic_sc).toMatchObject({ scheme: "basic" });
      const mqttForms = [
        ...(td.forms as Record<string, unknown>[]),
        ...Object.values({ ...td.properties, ...td.actions, ...td.events }).flatMap(
          (affordance) => affordance.forms as Record<string, unknown>[],
        ),
      ].filter((form) => String(form.href).startsWith("mqtt:"));
      expect(mqttForms.length).toBeGreaterThan(0);
      for (const form of mqttForms) {
        expect(form.security).toEqual(["mqtt_broker_basic_sc"]);
        const topic = (form["mqv:topic"] ?? form["mqv:filter"]) as string;
        expect(topic.startsWith(`lab/td-test/${name}/`)).toBe(true);
        // The same topic in the href's path (node-wot reads it there), never credentials.
        expect(form.href).toBe(`mqtt://127.0.0.1:1/${topic}`);
      }
      await expectValid(validate, td);
    },
  );

  it("/.well-known/wot is a valid TD linking every Thing's TD, and each Thing's TD links back", async () => {
    const response = await fetch(`${baseUrl}/.well-known/wot`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/td\+json/);
    const head = await fetch(`${baseUrl}/.well-known/wot`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(response.headers.get("content-type"));
    const td = (await response.json()) as ThingDescription;
    expect(td.id).toMatch(/^urn:uuid:/);
    expect(td.base).toBe(`${baseUrl}/`);
    const items = (td.links ?? []).filter((link) => link.rel === "item");
    expect(items.map((link) => new URL(String(link.href), td.base).href).sort()).toEqual(
      NAMES.map((name) => `${baseUrl}/${name}/`).sort(),
    );
    expect(items.every((link) => link.type === "application/td+json")).toBe(true);
    await expectValid(validate, td);
    const stage = (await getJson(`${baseUrl}/stage/`, "application/td+json")) as ThingDescription;
    expect(stage.links).toContainEqual({
      href: "/.well-known/wot",
      rel: "collection",
      type: "application/td+json",
    });
    // Distinct ids: the server's and each Thing's.
    const ids = await Promise.all(
      NAMES.map(async (name) => ((await getJson(`${baseUrl}/${name}/`)) as ThingDescription).id),
    );
    expect(new Set([td.id, ...ids]).size).toBe(NAMES.length + 1);
  });
});
