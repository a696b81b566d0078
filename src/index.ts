/**
 * labthings-ts: declare laboratory instruments as W3C Web of Things "Things" and
 * serve them over HTTP.
 *
 * @example
 * ```ts
 * import { Thing, property, Type, ThingServer } from "labthings-ts";
 *
 * class Lamp extends Thing {
 *   @property({ schema: Type.Number({ minimum: 0, maximum: 1 }) })
 *   accessor brightness = 0.5;
 * }
 * const server = new ThingServer([{ name: "lamp", thing: new Lamp() }], { port: 0 });
 * console.log(await server.start()); // http://127.0.0.1:PORT — TD at /lamp/
 * ```
 */
export { type Static, type TSchema, Type } from "@sinclair/typebox";
export {
  AffordanceNotFoundError,
  ConnectionError,
  type DownloadedBlob,
  type EventEmission,
  type GenerateClientOptions,
  generateClientModule,
  HttpError,
  InvocationCancelledError,
  InvocationFailedError,
  InvocationHandle,
  type InvocationUpdate,
  type InvokeOptions,
  type ObserveOptions,
  type PropertyChange,
  ProtocolError,
  type ReconnectOptions,
  type RemoteActionStatus,
  type RequestOptions,
  ThingClient,
  ThingClientError,
  type ThingClientOptions,
} from "./client/index.js";
export type { ThingDescription } from "./description/thing-description.js";
export {
  ConfigError,
  ConflictError,
  type FieldError,
  InvalidInputError,
  LabThingsError,
  ListenError,
  MethodNotAllowedError,
  NotFoundError,
  ThingDefinitionError,
  ThingLifecycleError,
  UnavailableError,
} from "./errors.js";
export type { EndAllReport, LongLivedResponse } from "./http/long-lived-registry.js";
export { LongLivedRegistry } from "./http/long-lived-registry.js";
export type { ShutdownReport, ThingServerOptions } from "./http/thing-server.js";
export { ThingServer } from "./http/thing-server.js";
export {
  type ActionContext,
  type ActionOptions,
  action,
  BlobOutput,
  blobOutput,
  type LockOption,
} from "./model/action.js";
export type { ThingClass } from "./model/declarations.js";
export { affordancesOf } from "./model/declarations.js";
export { type EventOptions, event, ThingEvent } from "./model/event.js";
export type { ThingLogger } from "./model/logger.js";
export {
  type Frame,
  isJpeg,
  MjpegStream,
  type MjpegStreamOptions,
  mjpegStream,
  type StreamClientStats,
  type StreamDeclarationOptions,
  type StreamStats,
} from "./model/mjpeg-stream.js";
export { type PropertyOptions, property, setting } from "./model/property.js";
export { type SlotOptions, thingSlot } from "./model/slot.js";
export {
  type EventListener,
  observeEvents,
  observeProperties,
  type PropertyChangeListener,
  Thing,
  type ThingHost,
} from "./model/thing.js";
export type { BlobReference } from "./runtime/blob-store.js";
export { ExposedThing } from "./runtime/exposed-thing.js";
export type { ActionStatus, InvocationStatus } from "./runtime/invocation.js";
export type { Notification, NotificationKind } from "./runtime/observation-hub.js";
export type { SettingsConfig } from "./runtime/settings-store.js";
export type { ThingEntry } from "./runtime/thing-registry.js";
