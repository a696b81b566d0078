/**
 * The simulated microscope as ThingServer entries, the one way every test sets it up:
 * `stage`, `camera` and (when asked) `autofocus`, each a fresh instance unless the test
 * passes its own to reach it directly.
 *
 * @example
 * ```ts
 * const stage = new SimulatedStage();
 * const server = new ThingServer(
 *   [...microscopeEntries({ stage, camera: SMALL_CAMERA, autofocus: true }), { name: "bench", thing }],
 *   { port: 0 },
 * );
 * ```
 */
import { Autofocus, SimulatedCamera, SimulatedStage } from "../../examples/microscope/index.js";
import type { ThingEntry } from "../../src/index.js";

type CameraOptions = ConstructorParameters<typeof SimulatedCamera>[0];

/** A camera for servers that need one but not its pictures: cheap to render. */
export const TINY_CAMERA = { width: 64, height: 48, fps: 10 } as const;
/** A camera whose pictures a test looks at (autofocus, viewers, the dashboard). */
export const SMALL_CAMERA = { width: 320, height: 240, fps: 15 } as const;

export interface MicroscopeParts {
  /** The stage to serve (default: a new SimulatedStage). */
  stage?: SimulatedStage;
  /** A camera or its options (default: the full 640×480 default); `false`: no camera. */
  camera?: SimulatedCamera | CameraOptions | false;
  /** Serve the autofocus Thing too (its slots need the camera). */
  autofocus?: boolean;
}

export function microscopeEntries(parts: MicroscopeParts = {}): ThingEntry[] {
  const entries: ThingEntry[] = [{ name: "stage", thing: parts.stage ?? new SimulatedStage() }];
  if (parts.camera !== false) {
    const camera =
      parts.camera instanceof SimulatedCamera ? parts.camera : new SimulatedCamera(parts.camera);
    entries.push({ name: "camera", thing: camera });
  }
  if (parts.autofocus) entries.push({ name: "autofocus", thing: new Autofocus() });
  return entries;
}
