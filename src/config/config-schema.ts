import { type Static, Type } from "@sinclair/typebox";
import { TOPIC_PREFIX_PATTERN } from "../bindings/mqtt-topics.js";
import { AFFORDANCE_NAME } from "../model/declarations.js";

/** `"./things/camera.ts#SimulatedCamera"`: a module path (relative to the config file) and an export. */
const ClassSpec = Type.String({
  minLength: 1,
  description: "Module and export: './path/to/module.ts#ClassName' (default export without '#').",
});

const ThingSpec = Type.Object(
  {
    class: ClassSpec,
    /** Passed to the constructor; validated against the class's `static options` schema when it has one. */
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** Slot name → Thing name, when more than one Thing could fill a slot. */
    slots: Type.Optional(
      Type.Record(Type.String(), Type.String({ pattern: AFFORDANCE_NAME.source })),
    ),
    /** Setting name → value used when nothing is saved yet. */
    settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** Setting name → value it always has; read-only over the network. */
    lockedSettings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** The TD's `id`; without it a `urn:uuid:` is made once and kept in the settings folder. */
    id: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z][A-Za-z0-9+.-]*:[^\\s]+$",
        description: "A URI naming this Thing, e.g. urn:uuid:… or urn:dev:ops:…",
      }),
    ),
  },
  { additionalProperties: false },
);

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export const ServerConfig = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    /** Thing name (its URL segment) → class, or class with options and slots. */
    things: Type.Record(
      Type.String({ pattern: AFFORDANCE_NAME.source }),
      Type.Union([ClassSpec, ThingSpec]),
      {
        minProperties: 1,
      },
    ),
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    apiPrefix: Type.Optional(Type.String({ pattern: "^(/[A-Za-z0-9._~-]+)*/?$" })),
    settingsDir: Type.Optional(Type.String({ minLength: 1 })),
    shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
    auth: Type.Optional(
      Type.Object(
        {
          tokenFile: Type.String({
            minLength: 1,
            description:
              "File holding the bearer token (relative to this file); LABTHINGS_TOKEN in the environment wins over it.",
          }),
        },
        { additionalProperties: false },
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          bodyBytes: Type.Optional(Type.Integer({ minimum: 1 })),
          urlBytes: Type.Optional(Type.Integer({ minimum: 64 })),
          headerBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
          jsonDepth: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
          headersTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
          requestTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
          streamsPerClient: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    cors: Type.Optional(Type.Union([Type.Boolean(), Type.Array(Type.String({ minLength: 1 }))])),
    trustProxy: Type.Optional(Type.Boolean()),
    requireAllThings: Type.Optional(Type.Boolean()),
    actionRetentionMs: Type.Optional(Type.Integer({ minimum: 0 })),
    maxRetainedInvocations: Type.Optional(Type.Integer({ minimum: 0 })),
    /** The URL others reach this server at, written into TDs given to a directory or broker. */
    publicUrl: Type.Optional(Type.String({ pattern: "^https?://[^\\s/]+(/[^\\s]*)?$" })),
    /** Advertise every Thing over DNS-SD (mDNS). Default: on when `host` is not loopback. */
    mdns: Type.Optional(Type.Boolean()),
    /** Register every TD with a W3C TD Directory. */
    directory: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            pattern: "^https?://[^\\s]+$",
            description: "The directory's base URL (its Things API is <url>/things)",
          }),
          tokenFile: Type.Optional(
            Type.String({
              minLength: 1,
              description: "File holding a bearer token for the directory (relative to this file)",
            }),
          ),
          ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Publish through an MQTT broker (and take commands from it when `commands` is true). */
    mqtt: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            pattern: "^mqtts?://[^\\s]+$",
            description: "The broker, e.g. mqtt://127.0.0.1:1883",
          }),
          topicPrefix: Type.Optional(
            Type.String({ pattern: TOPIC_PREFIX_PATTERN, maxLength: 200 }),
          ),
          username: Type.Optional(Type.String({ minLength: 1 })),
          passwordFile: Type.Optional(
            Type.String({
              minLength: 1,
              description: "File holding the broker password (relative to this file)",
            }),
          ),
          commands: Type.Optional(Type.Boolean()),
          advertisedUrl: Type.Optional(Type.String({ pattern: "^mqtts?://[^\\s]+$" })),
          protocolVersion: Type.Optional(Type.Union([Type.Literal(4), Type.Literal(5)])),
        },
        { additionalProperties: false },
      ),
    ),
    /** The fleet page: other servers to list besides those found by DNS-SD and the directory. */
    fleet: Type.Optional(
      Type.Object(
        { servers: Type.Optional(Type.Array(Type.String({ pattern: "^https?://[^\\s]+$" }))) },
        { additionalProperties: false },
      ),
    ),
    logLevel: Type.Optional(Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)))),
    logFormat: Type.Optional(Type.Union([Type.Literal("pretty"), Type.Literal("json")])),
  },
  { additionalProperties: false },
);
export type ServerConfig = Static<typeof ServerConfig>;
export type ThingSpec = Static<typeof ThingSpec>;
