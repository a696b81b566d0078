/**
 * The roles Things play for each other in a microscope: a camera that streams and a
 * stage that moves. Autofocus (and any Thing of yours) fills its slots with these, so it
 * works with a simulated camera or a webcam, a simulated stage or a Sangaboard alike.
 */
import { type MjpegStream, type Static, Thing, Type } from "../index.js";

export const Position = Type.Object(
  {
    x: Type.Integer({ description: "Motor steps along x" }),
    y: Type.Integer({ description: "Motor steps along y" }),
    z: Type.Integer({ description: "Motor steps along z (focus)" }),
  },
  { additionalProperties: false },
);
export type Position = Static<typeof Position>;

/** Where a relative move of `by` from `from` ends: missing axes stay put. */
export function displaced(from: Position, by: Partial<Position>): Position {
  return { x: from.x + (by.x ?? 0), y: from.y + (by.y ?? 0), z: from.z + (by.z ?? 0) };
}

/** How a caller follows and stops a move it makes through `Stage.moveTo`. */
export interface MoveOptions {
  signal?: AbortSignal;
  onProgress?: (fraction: number, position: Position) => void;
}

// Registered symbols: a Thing built from the source and one built from `dist/` (both can
// be loaded by one server, e.g. a `.ts` Thing next to the installed package) still agree.
const CAMERA = Symbol.for("labthings-ts.role.camera");
const STAGE = Symbol.for("labthings-ts.role.stage");

/** `instanceof Role` by brand, so copies agree; subclasses keep the ordinary check. */
function hasRole(role: symbol, cls: Function, base: Function, value: unknown): boolean {
  if (cls !== base) return Function.prototype[Symbol.hasInstance].call(cls, value);
  return (
    typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[role] === true
  );
}

/**
 * A camera: its live `stream` (autofocus scores its frames) and, by convention, a
 * `capture` action and a `fieldOfView` property for the dashboard's microscope view.
 *
 * @example
 * ```ts
 * class Autofocus extends Thing { @thingSlot(Camera) accessor camera!: Camera; }
 * ```
 */
export abstract class Camera extends Thing {
  abstract readonly stream: MjpegStream;
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class being tested against, maybe a subclass
    return hasRole(CAMERA, this, Camera, value);
  }
}
Object.defineProperty(Camera.prototype, CAMERA, { value: true });

/**
 * A stage: where it is (`position`, observed) and `moveTo` for other Things' actions that
 * hold the `"stage"` lock (autofocus). Its own actions are `moveRelative`/`moveAbsolute`.
 */
export abstract class Stage extends Thing {
  abstract readonly position: Position;
  /** Travel limit on each axis (±steps from the origin), when the stage knows it. */
  readonly range?: { x: number; y: number; z: number };
  /** Move to `target`; resolves where it stopped. On abort it stops and rejects. */
  abstract moveTo(target: Position, options?: MoveOptions): Promise<Position>;
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class being tested against, maybe a subclass
    return hasRole(STAGE, this, Stage, value);
  }
}
Object.defineProperty(Stage.prototype, STAGE, { value: true });
