/** The simulated microscope: a stage, and a camera that looks at it. */
export { SimulatedCamera } from "./camera.js";
export { SimulatedStage } from "./stage.js";
