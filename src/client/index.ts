/**
 * `labthings-ts/client`: a typed client for any Thing whose Thing Description follows the
 * WoT HTTP Basic and SSE Profiles, in Node 20 or a browser (every file here is
 * browser-safe: no Node imports), and the code generator behind `labthings-ts client-gen`.
 *
 * @example
 * ```ts
 * import { ThingClient } from "labthings-ts/client";
 *
 * const camera = await ThingClient.connect("http://127.0.0.1:5000/camera/");
 * console.log(await camera.readProperty("exposureTime"));
 * const jpeg = await camera.snapshot("stream");
 * ```
 */
export {
  type AffordanceKind,
  AffordanceNotFoundError,
  ConnectionError,
  HttpError,
  InvocationCancelledError,
  InvocationFailedError,
  type InvocationLogRecord,
  type InvocationStatusName,
  type ProblemDetails,
  ProtocolError,
  type RemoteActionStatus,
  ThingClientError,
  type ThingClientErrorOptions,
} from "./client-errors.js";
export { type GenerateClientOptions, generateClientModule } from "./codegen.js";
export type { FetchFunction } from "./http-requester.js";
export {
  InvocationHandle,
  type InvocationUpdate,
  type WatchMode,
} from "./invocation-handle.js";
export { multipartBoundary, readMjpegFrames } from "./mjpeg-reader.js";
export { type SseMessage, SseParser } from "./sse-parser.js";
export type { ReconnectOptions } from "./sse-reader.js";
export {
  type BlobReference,
  type DownloadedBlob,
  type EventEmission,
  type InvokeOptions,
  type ObserveOptions,
  type PropertyChange,
  type RequestOptions,
  ThingClient,
  type ThingClientOptions,
} from "./thing-client.js";
export type {
  ActionAffordance,
  ClientThingDescription,
  DataSchema,
  EventAffordance,
  FormDescription,
  LinkDescription,
  PropertyAffordance,
} from "./thing-description.js";
export { parseThingDescription } from "./thing-description.js";
