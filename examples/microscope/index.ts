/** The simulated microscope: a stage, a camera that looks at it, and autofocus. */
export { Autofocus } from "./autofocus.js";
export { SimulatedCamera } from "./camera.js";
export { SimulatedStage } from "./stage.js";
