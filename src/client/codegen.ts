/**
 * Code generation for `labthings-ts client-gen`: from a Thing Description, a TypeScript
 * module with the Thing's property, action input/output and event data types, and a
 * typed wrapper class over ThingClient. Pure (a TD in, source text out), so it also runs
 * in a browser.
 */
import { selectForm } from "./form-selection.js";
import { docComment, isObjectLiteralType, memberName, schemaToType } from "./schema-types.js";
import type { ClientThingDescription, DataSchema } from "./thing-description.js";

export interface GenerateClientOptions {
  /** Module the generated code imports ThingClient from; default "labthings-ts/client". */
  importFrom?: string;
  /** Name of the wrapper class; default from the TD's title, e.g. "SimulatedStageClient". */
  className?: string;
  /** Where the TD came from (URL or file), named in the header comment. */
  source?: string;
}

/** Names the generated module must not declare: its imports and globals it uses. */
const RESERVED_TYPE_NAMES = new Set([
  "ThingClient",
  "ThingClientOptions",
  "InvocationHandle",
  "InvokeOptions",
  "ObserveOptions",
  "RequestOptions",
  "BlobReference",
  "DownloadedBlob",
  "Promise",
  "Record",
  "AsyncGenerator",
  "AsyncIterable",
  "Uint8Array",
  "URL",
  "Array",
  "Object",
  "String",
  "Number",
  "Boolean",
  "Date",
  "Error",
  "Map",
  "Set",
  "Symbol",
  "Function",
  "Partial",
  "Readonly",
]);

/** Members every wrapper class has. */
const RESERVED_MEMBERS = [
  "thing",
  "constructor",
  "readAllProperties",
  "downloadBlob",
  "stream",
  "snapshot",
];

/**
 * Generate the TypeScript module for a Thing.
 *
 * @example
 * ```ts
 * const td = (await ThingClient.connect("http://127.0.0.1:5000/stage/")).description;
 * await writeFile("stage-client.ts", generateClientModule(td, { source: "http://…/stage/" }));
 * // import { SimulatedStageClient } from "./stage-client.js";
 * // const stage = await SimulatedStageClient.connect("http://127.0.0.1:5000/stage/");
 * // const position: Position = await stage.readPosition();
 * ```
 */
export function generateClientModule(
  td: ClientThingDescription,
  options: GenerateClientOptions = {},
): string {
  return new ModuleWriter(td, options).write();
}

/** `moveRelative` → `MoveRelative`, `frame-rate` → `FrameRate`, `2x` → `_2x`. */
export function pascalCase(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[^\p{L}\p{N}_$]+/u)
    .filter((word) => word !== "");
  const joined = words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join("");
  if (joined === "") return "Unnamed";
  return /^\p{N}/u.test(joined) ? `_${joined}` : joined;
}

function camelCase(name: string): string {
  const pascal = pascalCase(name);
  return pascal.startsWith("_") ? pascal : pascal.charAt(0).toLowerCase() + pascal.slice(1);
}

class ModuleWriter {
  readonly #td: ClientThingDescription;
  readonly #options: GenerateClientOptions;
  readonly #base: string;
  readonly #typeNames = new Set(RESERVED_TYPE_NAMES);
  /** Canonical schema JSON → the first type declared for it (identical schemas share a type). */
  readonly #declared = new Map<string, string>();
  readonly #declarations: string[] = [];
  readonly #members = new Set(RESERVED_MEMBERS);
  readonly #methods: string[] = [];
  readonly #imports = new Set(["ThingClient", "type ThingClientOptions"]);

  constructor(td: ClientThingDescription, options: GenerateClientOptions) {
    this.#td = td;
    this.#options = options;
    // Only form selection needs a base; any absolute URL resolves relative hrefs the same way.
    this.#base = new URL(td.base ?? "http://thing.invalid/", "http://thing.invalid/").href;
  }

  write(): string {
    const className = this.#unique(
      this.#options.className ?? `${pascalCase(this.#td.title)}Client`,
    );
    const propertiesInterface = this.#unique(`${pascalCase(this.#td.title)}Properties`);
    const readable = this.#properties();
    this.#actions();
    this.#events();
    this.#streams(className);
    const allProperties = readable.map(
      ({ name, typeName, readOnly }) =>
        `  ${readOnly ? "readonly " : ""}${memberName(name)}: ${typeName};`,
    );
    if (readable.length > 0) {
      this.#declarations.push(
        `/** Every readable property of "${this.#td.title}", as readAllProperties() returns them. */\n` +
          `export interface ${propertiesInterface} {\n${allProperties.join("\n")}\n}`,
      );
      this.#unshift(
        method(
          "Every readable property in one object.",
          `readAllProperties(options?: RequestOptions): Promise<${propertiesInterface}>`,
          `return this.thing.readAllProperties<${propertiesInterface}>(options);`,
        ),
      );
      if (Object.values(this.#td.properties).some((property) => property.observable)) {
        this.#imports.add("type PropertyChange");
        this.#push(
          method(
            "Every change of any observable property, as `{ name, value }` (one event stream), until `options.signal` aborts.",
            `observeAllProperties(options?: ObserveOptions): AsyncGenerator<PropertyChange<${propertiesInterface}>, void, undefined>`,
            `return this.thing.observeAllProperties<${propertiesInterface}>(options);`,
          ),
        );
      }
    }
    const source = this.#options.source;
    const header = [
      "/**",
      ` * Typed client for the Thing "${comment(this.#td.title)}"${this.#td.description ? `: ${comment(this.#td.description)}` : ""}`,
      " *",
      ` * Generated by \`labthings-ts client-gen\`${source ? ` from ${comment(source)}` : ""}.`,
      " * Do not edit: regenerate when the Thing changes.",
      " */",
    ];
    const imports = [...this.#imports].sort((a, b) =>
      a.replace("type ", "").localeCompare(b.replace("type ", "")),
    );
    const exampleUrl = source && /^https?:/.test(source) ? source : "http://127.0.0.1:5000/thing/";
    const classDoc = [
      "/**",
      ` * A typed client for "${comment(this.#td.title)}".`,
      " *",
      " * @example",
      " * ```ts",
      ` * const thing = await ${className}.connect(${JSON.stringify(comment(exampleUrl))});`,
      " * ```",
      " */",
    ].join("\n");
    return [
      header.join("\n"),
      `import {\n${imports.map((name) => `  ${name},`).join("\n")}\n} from ${JSON.stringify(this.#options.importFrom ?? "labthings-ts/client")};`,
      ...this.#declarations,
      `${classDoc}
export class ${className} {
  /** The untyped client underneath: the TD, and anything this class does not wrap. */
  readonly thing: ThingClient;

  constructor(thing: ThingClient) {
    this.thing = thing;
  }

  /** Fetch the Thing Description at \`url\` and return a typed client. */
  static async connect(url: string | URL, options?: ThingClientOptions): Promise<${className}> {
    return new ${className}(await ThingClient.connect(url, options));
  }
${this.#methods.join("")}}`,
    ]
      .join("\n\n")
      .concat("\n");
  }

  #properties(): { name: string; typeName: string; readOnly: boolean }[] {
    const readable: { name: string; typeName: string; readOnly: boolean }[] = [];
    for (const [name, property] of Object.entries(this.#td.properties)) {
      const typeBase = pascalCase(name);
      // "2x": the type is `_2x` (an identifier cannot start with a digit), the method `read2x`.
      const pascal = typeBase.replace(/^_(?=\p{N})/u, "");
      const schema = dataSchemaOf(property);
      const typeName = this.#declare(typeBase, schema, docComment(schema, ""));
      const can = (op: string) =>
        selectForm(property.forms, op, "property", this.#base, { access: property }) !== undefined;
      const key = JSON.stringify(name);
      if (can("readproperty")) {
        readable.push({ name, typeName, readOnly: property.readOnly === true });
        this.#method(`read${pascal}`, (id) =>
          method(
            about(`Read the property '${name}'.`, property),
            `${id}(options?: RequestOptions): Promise<${typeName}>`,
            `return this.thing.readProperty<${typeName}>(${key}, options);`,
          ),
        );
      }
      if (can("writeproperty")) {
        this.#method(`write${pascal}`, (id) =>
          method(
            about(`Write the property '${name}'.`, property),
            `${id}(value: ${typeName}, options?: RequestOptions): Promise<void>`,
            `return this.thing.writeProperty(${key}, value, options);`,
          ),
        );
      }
      if (can("observeproperty")) {
        this.#method(`observe${pascal}`, (id) =>
          method(
            about(
              `Each new value of the property '${name}' (server-sent events), until \`options.signal\` aborts.`,
              property,
            ),
            `${id}(options?: ObserveOptions): AsyncGenerator<${typeName}, void, undefined>`,
            `return this.thing.observeProperty<${typeName}>(${key}, options);`,
          ),
        );
      }
    }
    return readable;
  }

  #actions(): void {
    let blobs = false;
    for (const [name, action] of Object.entries(this.#td.actions)) {
      const pascal = pascalCase(name);
      const key = JSON.stringify(name);
      const input =
        action.input === undefined
          ? undefined
          : this.#declare(`${pascal}Input`, action.input, docComment(action.input, ""));
      const output =
        action.output === undefined
          ? "void"
          : this.#declare(`${pascal}Output`, action.output, docComment(action.output, ""));
      if (isBlobReference(action.output)) blobs = true;
      this.#imports.add("type InvocationHandle");
      const returns = `Promise<InvocationHandle<${output}>>`;
      const doc = about(
        `Invoke the action '${name}'; resolves once the server has accepted it (\`await handle.result()\` for the output).`,
        action,
      );
      let parameters = "options?: InvokeOptions";
      if (input !== undefined && action.input) {
        // An object input whose members are all optional may be left out.
        const optional =
          action.input.type === "object" &&
          (!Array.isArray(action.input.required) || action.input.required.length === 0);
        parameters = `${optional ? `input: ${input} = {}` : `input: ${input}`}, ${parameters}`;
      }
      const argument = input === undefined ? "undefined" : "input";
      this.#method(camelCase(name), (id) =>
        method(
          doc,
          `${id}(${parameters}): ${returns}`,
          `return this.thing.invokeAction<${output}>(${key}, ${argument}, options);`,
        ),
      );
    }
    if (blobs) {
      this.#imports.add("type BlobReference");
      this.#imports.add("type DownloadedBlob");
      this.#push(
        method(
          "Download binary data an action returned as `{ href, mediaType, size }`.",
          "downloadBlob(reference: BlobReference, options?: RequestOptions): Promise<DownloadedBlob>",
          "return this.thing.downloadBlob(reference, options);",
        ),
      );
    }
  }

  #events(): void {
    const emissions: string[] = [];
    for (const [name, event] of Object.entries(this.#td.events)) {
      const pascal = pascalCase(name);
      const data =
        event.data === undefined
          ? "unknown"
          : this.#declare(`${pascal}Data`, event.data, docComment(event.data, ""));
      if (selectForm(event.forms, "subscribeevent", "event", this.#base) === undefined) continue;
      emissions.push(`  ${memberName(name)}: ${data};`);
      this.#method(`subscribe${pascal}`, (id) =>
        method(
          about(
            `Each emission of the event '${name}' (server-sent events), until \`options.signal\` aborts.`,
            event,
          ),
          `${id}(options?: ObserveOptions): AsyncGenerator<${data}, void, undefined>`,
          `return this.thing.subscribeEvent<${data}>(${JSON.stringify(name)}, options);`,
        ),
      );
    }
    if (emissions.length > 0) {
      const eventsInterface = this.#unique(`${pascalCase(this.#td.title)}Events`);
      this.#declarations.push(
        `/** The data of each event of "${this.#td.title}", by event name. */\n` +
          `export interface ${eventsInterface} {\n${emissions.join("\n")}\n}`,
      );
      this.#imports.add("type EventEmission");
      this.#push(
        method(
          "Every emission of any event, as `{ name, data }` (one event stream), until `options.signal` aborts.",
          `subscribeAllEvents(options?: ObserveOptions): AsyncGenerator<EventEmission<${eventsInterface}>, void, undefined>`,
          `return this.thing.subscribeAllEvents<${eventsInterface}>(options);`,
        ),
      );
    }
  }

  #streams(className: string): void {
    const names = this.#td.links
      .filter((link) => link.type?.toLowerCase().startsWith("multipart/x-mixed-replace"))
      .map((link) =>
        link.href
          .replace(/^\.?\//, "")
          .split(/[?#]/)[0]!
          .replace(/\/$/, ""),
      );
    if (names.length === 0) return;
    const streamType = this.#unique(`${className.replace(/Client$/, "")}StreamName`);
    this.#declarations.push(
      `/** The MJPEG streams the Thing links to. */\nexport type ${streamType} = ${names.map((n) => JSON.stringify(n)).join(" | ")};`,
    );
    this.#push(
      method(
        "The JPEG frames of a stream, until `options.signal` aborts or the server ends it.",
        `stream(name: ${streamType}, options?: RequestOptions): AsyncGenerator<Uint8Array, void, undefined>`,
        "return this.thing.stream(name, options);",
      ),
      method(
        "The newest frame of a stream, as JPEG bytes.",
        `snapshot(name: ${streamType}, options?: RequestOptions): Promise<Uint8Array>`,
        "return this.thing.snapshot(name, options);",
      ),
    );
  }

  /** Declare `export type Name = …` (or reuse the type of an identical schema); returns the name. */
  #declare(wanted: string, schema: DataSchema, doc: string): string {
    const canonical = JSON.stringify(withoutDocs(schema));
    const type = schemaToType(schema);
    if (type === "unknown" || type === "void") return type;
    const name = this.#unique(wanted);
    const existing = this.#declared.get(canonical);
    const prefix = doc === "" ? "" : `${doc}\n`;
    if (existing !== undefined) {
      this.#declarations.push(`${prefix}export type ${name} = ${existing};`);
    } else {
      this.#declared.set(canonical, name);
      this.#declarations.push(
        isObjectLiteralType(type)
          ? `${prefix}export interface ${name} ${type}`
          : `${prefix}export type ${name} = ${type};`,
      );
    }
    return name;
  }

  #unique(wanted: string): string {
    let name = this.#typeNames.has(wanted) ? `${wanted}Value` : wanted;
    for (let n = 2; this.#typeNames.has(name); n++) name = `${wanted}${n}`;
    this.#typeNames.add(name);
    return name;
  }

  #method(wanted: string, build: (identifier: string) => string): void {
    this.#push(build(this.#memberName(wanted)));
  }

  /** Add methods at the end, importing the option types their text uses. */
  #push(...texts: string[]): void {
    for (const text of texts) this.#importUsed(text);
    this.#methods.push(...texts);
  }

  /** Add a method at the start. */
  #unshift(text: string): void {
    this.#importUsed(text);
    this.#methods.unshift(text);
  }

  #importUsed(text: string): void {
    for (const type of ["RequestOptions", "ObserveOptions", "InvokeOptions"]) {
      if (new RegExp(`\\b${type}\\b`).test(text)) this.#imports.add(`type ${type}`);
    }
  }

  #memberName(wanted: string): string {
    let name = this.#members.has(wanted) ? `${wanted}Action` : wanted;
    for (let n = 2; this.#members.has(name); n++) name = `${wanted}${n}`;
    this.#members.add(name);
    return name;
  }
}

/** Text safe inside a block comment. */
function comment(text: string): string {
  return text.replaceAll("*/", "*\\/");
}

function method(doc: string, signature: string, body: string): string {
  return `\n${docComment({}, "  ", doc)}\n  ${signature} {\n    ${body}\n  }\n`;
}

/** A method's doc: what it does, then the affordance's own title or description. */
function about(sentence: string, affordance: DataSchema): string {
  const text = affordance.description ?? affordance.title;
  return text ? `${sentence}\n\n${text}` : sentence;
}

/** A property affordance is also its data schema: drop the members that are not schema. */
function dataSchemaOf(property: DataSchema): DataSchema {
  const {
    forms: _forms,
    observable: _observable,
    uriVariables: _uriVariables,
    ...schema
  } = property;
  return schema;
}

/** The schema without what only documents it: identical shapes then share one type. */
function withoutDocs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutDocs);
  if (typeof schema !== "object" || schema === null) return schema;
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (DOCUMENTATION_KEYWORDS.has(key)) continue;
    // `properties` maps member names (which may be "title") to schemas.
    kept[key] =
      key === "properties" && typeof value === "object" && value !== null
        ? Object.fromEntries(
            Object.entries(value).map(([name, member]) => [name, withoutDocs(member)]),
          )
        : withoutDocs(value);
  }
  return kept;
}

const DOCUMENTATION_KEYWORDS = new Set([
  "title",
  "description",
  "readOnly",
  "writeOnly",
  "observable",
]);

function isBlobReference(schema: DataSchema | undefined): boolean {
  const properties = schema?.properties as Record<string, unknown> | undefined;
  return properties !== undefined && "href" in properties && "mediaType" in properties;
}
