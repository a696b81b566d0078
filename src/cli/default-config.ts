import type { ServerConfig } from "../config/config-schema.js";

// Built: dist/src/cli → dist/examples. From source (tests, tsx): src/cli → examples.
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const example = (file: string) =>
  new URL(`../../examples/microscope/${file}${extension}`, import.meta.url).href;

/** What `labthings-ts serve` runs without `--config`: the simulated microscope. */
export function defaultConfig(): ServerConfig {
  return {
    things: {
      stage: { class: `${example("stage")}#SimulatedStage` },
      camera: {
        class: `${example("camera")}#SimulatedCamera`,
        // The demo starts in focus (the stage starts at z = 0; Z+/Z− blur it, Autofocus
        // brings it back), and its sensor warms up as a real one does.
        options: { width: 640, height: 480, fps: 15, focusZ: 0, thermalDrift: true },
      },
      autofocus: { class: `${example("autofocus")}#Autofocus` },
    },
  };
}
