/**
 * Things with `@setting` accessors for the settings tests: a number with limits, an
 * object and a string (persisted), next to a plain property (not persisted).
 */
import { property, setting, Thing, Type } from "../../src/index.js";

export const Region = Type.Object(
  {
    x: Type.Integer({ minimum: 0 }),
    y: Type.Integer({ minimum: 0 }),
    width: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

export const DEFAULT_SPEED = 2000;
export const DEFAULT_REGION = { x: 0, y: 0, width: 100 };
export const DEFAULT_LABEL = "unnamed";
/** The keys of the settings file of a `TunedStage`. */
export const SETTING_KEYS = ["label", "region", "speed"];

export class TunedStage extends Thing {
  static override title = "Tuned stage";

  @setting({ schema: Type.Number({ minimum: 1, maximum: 20000 }), title: "Speed" })
  accessor speed = DEFAULT_SPEED;

  @setting({ schema: Region, title: "Region" })
  accessor region = { ...DEFAULT_REGION };

  @setting({ schema: Type.String({ minLength: 1, maxLength: 40 }), title: "Label" })
  accessor label = DEFAULT_LABEL;

  /** A plain property: never in the settings file. */
  @property({ schema: Type.Number() })
  accessor position = 0;

  /** Change one key of the object-valued setting through the update API. */
  widen(width: number): void {
    this.updateProperty("region", { width });
  }

  /** Shift the region with a function of the current value. */
  shift(dx: number): void {
    this.updateProperty("region", (region) => ({ ...region, x: region.x + dx }));
  }

  /** The mistake the freezing catches: an in-place change nothing would notice. */
  mutateInPlace(width: number): void {
    (this.region as { width: number }).width = width;
  }

  /** The Thing's own code changing a setting (as after a calibration). */
  calibrate(width: number): void {
    this.region = { x: 5, y: 7, width };
  }
}
