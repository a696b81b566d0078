/**
 * The MQTT topic layout and the TD forms that describe it (W3C WoT MQTT Binding Template,
 * `mqv:` vocabulary). Under the configured prefix:
 *
 * | topic | what | retained |
 * | --- | --- | --- |
 * | `<prefix>/status` | `{ online, url, things }` (last will: offline) | yes |
 * | `<prefix>/<thing>/td` | the Thing Description | yes |
 * | `<prefix>/<thing>/properties/<name>` | the current value (JSON) | yes |
 * | `<prefix>/<thing>/events/<name>` | each emission's data (JSON) | no |
 * | `<prefix>/<thing>/actions/<name>/status` | every invocation status change | no |
 * | `<prefix>/<thing>/properties/<name>/set` | a write, from a consumer (when enabled) | — |
 * | `<prefix>/<thing>/actions/<name>` | an invocation's input, from a consumer (when enabled) | — |
 *
 * Forms name the topic twice: in `mqv:topic` / `mqv:filter` (the template's current text)
 * and as the href's path (`mqtt://broker:1883/<topic>`), which node-wot's MQTT binding reads.
 * Topic segments are restricted to URL-safe characters so both spellings are the same.
 */
import type { Form, FormContributor, SecurityScheme } from "../description/thing-description.js";
import type { ActionDeclaration, EventDeclaration } from "../model/declarations.js";
import type { ExposedProperty, ExposedThing } from "../runtime/exposed-thing.js";

export const MQTT_VOCABULARY = { mqv: "https://www.w3.org/2019/wot/mqtt#" };
/** Topic prefixes: segments of URL-safe characters, no wildcards, no leading or trailing `/`. */
export const TOPIC_PREFIX_PATTERN = "^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$";

const JSON_TYPE = "application/json";

export class MqttTopics {
  constructor(readonly prefix: string) {}

  status(): string {
    return `${this.prefix}/status`;
  }
  description(thing: string): string {
    return `${this.prefix}/${thing}/td`;
  }
  property(thing: string, name: string): string {
    return `${this.prefix}/${thing}/properties/${name}`;
  }
  propertyWrite(thing: string, name: string): string {
    return `${this.property(thing, name)}/set`;
  }
  event(thing: string, name: string): string {
    return `${this.prefix}/${thing}/events/${name}`;
  }
  action(thing: string, name: string): string {
    return `${this.prefix}/${thing}/actions/${name}`;
  }
  actionStatus(thing: string, name: string): string {
    return `${this.action(thing, name)}/status`;
  }
  /** What a server accepting commands subscribes to: writes and invocations of every Thing. */
  commandFilters(): string[] {
    return [`${this.prefix}/+/properties/+/set`, `${this.prefix}/+/actions/+`];
  }

  /** Thing, kind and affordance of a command topic; undefined for any other topic. */
  parseCommand(
    topic: string,
  ): { thing: string; kind: "write" | "invoke"; name: string } | undefined {
    if (!topic.startsWith(`${this.prefix}/`)) return undefined;
    const parts = topic.slice(this.prefix.length + 1).split("/");
    if (parts.length === 4 && parts[1] === "properties" && parts[3] === "set") {
      return { thing: parts[0]!, kind: "write", name: parts[2]! };
    }
    if (parts.length === 3 && parts[1] === "actions") {
      return { thing: parts[0]!, kind: "invoke", name: parts[2]! };
    }
    return undefined;
  }
}

export interface MqttFormOptions {
  /** Broker URL consumers reach, e.g. `mqtt://broker.lab:1883` (credentials are never written). */
  brokerUrl: string;
  /** Writes and invocations are accepted from MQTT: describe them. */
  commands: boolean;
  /** The broker wants a user name and password (its own, not this server's). */
  brokerCredentials: boolean;
}

/** The MQTT forms of every affordance, for the TD builder. */
export class MqttForms implements FormContributor {
  readonly context = MQTT_VOCABULARY;
  readonly securityDefinitions: Record<string, SecurityScheme>;
  readonly #broker: string;
  readonly #security: string;

  constructor(
    private readonly topics: MqttTopics,
    private readonly options: MqttFormOptions,
  ) {
    const url = new URL(options.brokerUrl);
    this.#broker = `${url.protocol}//${url.host}`;
    // Form-level security: the broker's own, never the HTTP server's bearer token.
    this.#security = options.brokerCredentials ? "mqtt_broker_basic_sc" : "mqtt_nosec_sc";
    this.securityDefinitions = {
      [this.#security]: options.brokerCredentials
        ? { scheme: "basic", description: "The MQTT broker's user name and password" }
        : { scheme: "nosec" },
    };
  }

  propertyForms(thing: string, property: ExposedProperty): Form[] {
    const forms: Form[] = [];
    // Only observable properties are published (each change, retained).
    if (property.readable && property.declaration.observable) {
      forms.push(
        this.#subscribe(this.topics.property(thing, property.name), [
          "readproperty",
          "observeproperty",
          "unobserveproperty",
        ]),
      );
    }
    if (this.options.commands && property.writable) {
      forms.push(this.#publish(this.topics.propertyWrite(thing, property.name), ["writeproperty"]));
    }
    return forms;
  }

  eventForms(thing: string, event: EventDeclaration): Form[] {
    return [
      this.#subscribe(
        this.topics.event(thing, event.name),
        ["subscribeevent", "unsubscribeevent"],
        false,
      ),
    ];
  }

  actionForms(thing: string, action: ActionDeclaration): Form[] {
    if (!this.options.commands) return [];
    return [this.#publish(this.topics.action(thing, action.name), ["invokeaction"])];
  }

  thingForms(thing: ExposedThing): Form[] {
    const forms: Form[] = [];
    const observable = [...thing.properties.values()].some(
      (p) => p.readable && p.declaration.observable,
    );
    if (observable) {
      forms.push(
        this.#subscribe(`${this.topics.prefix}/${thing.name}/properties/+`, [
          "observeallproperties",
          "unobserveallproperties",
        ]),
      );
    }
    if (thing.events.size > 0) {
      forms.push(
        this.#subscribe(
          `${this.topics.prefix}/${thing.name}/events/+`,
          ["subscribeallevents", "unsubscribeallevents"],
          false,
        ),
      );
    }
    return forms;
  }

  #subscribe(filter: string, op: string[], retain = true): Form {
    return {
      href: `${this.#broker}/${filter}`,
      op,
      contentType: JSON_TYPE,
      "mqv:filter": filter,
      ...(retain ? { "mqv:retain": true } : {}),
      security: [this.#security],
    };
  }

  #publish(topic: string, op: string[]): Form {
    return {
      href: `${this.#broker}/${topic}`,
      op,
      contentType: JSON_TYPE,
      "mqv:topic": topic,
      "mqv:retain": false,
      security: [this.#security],
    };
  }
}
