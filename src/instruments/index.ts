/**
 * `labthings-ts/instruments`: Things for real hardware, and the building blocks they
 * share. They use only the public authoring API, as your own Things would, so each is
 * also a worked example (see docs/instruments.md).
 *
 * @example
 * ```json
 * { "things": { "camera": { "class": "labthings-ts/instruments#FfmpegCamera",
 *                           "options": { "device": "/dev/video0" } } } }
 * ```
 */
export { type ExifText, insertExif } from "./camera/exif.js";
export { FfmpegCamera, FfmpegCameraOptions, ffmpegQscale } from "./camera/ffmpeg-camera.js";
export { JpegSplitter, jpegDimensions } from "./camera/jpeg-splitter.js";
export {
  type CaptureCommand,
  ProcessCamera,
  ProcessCameraOptions,
  type ProcessCameraSettings,
  Resolution,
} from "./camera/process-camera.js";
export { RpicamCamera, RpicamCameraOptions } from "./camera/rpicam-camera.js";
export { findExecutable } from "./process/find-executable.js";
export {
  type ProcessExit,
  SupervisedProcess,
  type SupervisedProcessOptions,
} from "./process/supervised-process.js";
export { Camera, type MoveOptions, Position, Stage } from "./roles.js";
export {
  SangaboardStage,
  SangaboardStageOptions,
} from "./sangaboard/sangaboard-stage.js";
export {
  DeviceError,
  type QueryOptions,
  type SerialChannel,
  SerialLineDevice,
  type SerialLineDeviceOptions,
  type SerialStatus,
  SerialTimeoutError,
} from "./serial/serial-line-device.js";
