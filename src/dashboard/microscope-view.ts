/**
 * The microscope, when the page finds one among the Things: a camera that streams, a
 * stage with a `position` and a `moveRelative` action, and optionally an autofocus.
 * The live view is the centre of the page and stays in sight (it sticks to the top while
 * the controls beside or below it scroll; results collapse to one line; captures go to a
 * fixed-height gallery strip). A click brings the clicked point to the centre (the
 * camera's `fieldOfView`, in stage steps, turns image fractions into a move); the jog
 * pad and the arrow keys move by the chosen step, Page Up/Down focus. A scale bar comes
 * from `fieldOfView`.
 */
import type { AccessTokens } from "./access-tokens.js";
import { invoke } from "./action-view.js";
import { CaptureGallery } from "./capture-gallery.js";
import { errorText, formatValue, h, isPlainObject, uid } from "./dom.js";
import { InvocationView } from "./invocation-view.js";
import { ScaleBar } from "./scale-bar.js";
import type { JsonSchema } from "./schema-check.js";
import type { StreamLink } from "./stream-view.js";
import type { ThingPanel } from "./thing-panel.js";

export interface MicroscopeParts {
  stage: ThingPanel;
  camera: ThingPanel;
  stream: StreamLink;
  /** The autofocus Thing and its action, when there is one. */
  autofocus: { panel: ThingPanel; action: string } | undefined;
}

/** Step presets in x and y, as fractions of the field of view; the second is the default. */
const XY_STEPS = [
  { label: "Fine", fraction: 1 / 20 },
  { label: "¼ view", fraction: 1 / 4 },
  { label: "1 view", fraction: 1 },
] as const;
/** Focus step presets in motor steps; the second is the default. */
const Z_STEPS = [10, 100, 1000] as const;

/** Find a camera (with a stream), a stage (position + moveRelative) and an autofocus. */
export function findMicroscope(panels: ThingPanel[]): MicroscopeParts | undefined {
  const stage = panels.find((panel) => {
    const position = panel.client.description.properties.position as JsonSchema | undefined;
    return (
      position?.properties?.x !== undefined &&
      position.properties.y !== undefined &&
      panel.client.description.actions.moveRelative !== undefined
    );
  });
  const camera =
    panels.find((panel) => panel.streams.length > 0 && panel.client.description.actions.capture) ??
    panels.find((panel) => panel.streams.length > 0);
  if (!stage || !camera) return undefined;
  const stream = camera.streams.find((link) => link.name === "stream") ?? camera.streams[0]!;
  let autofocus: MicroscopeParts["autofocus"];
  for (const panel of panels) {
    const actions = panel.client.description.actions;
    const named = Object.keys(actions).find((name) =>
      /autofocus/i.test(`${name} ${actions[name]?.title ?? ""}`),
    );
    const run =
      /focus/i.test(`${panel.id} ${panel.client.title}`) && actions.run ? "run" : undefined;
    const action = named ?? run;
    if (action) {
      autofocus = { panel, action };
      break;
    }
  }
  return { stage, camera, stream, autofocus };
}

/** A row of radio buttons for step presets; returns the group and a reader of the choice. */
function presetGroup<T>(
  legend: string,
  presets: readonly T[],
  label: (preset: T) => string,
): { element: HTMLElement; chosen: () => T } {
  const name = uid("preset", legend);
  const inputs = presets.map((_, i) =>
    h("input", { type: "radio", name, value: String(i), checked: i === 1 }),
  );
  const element = h(
    "fieldset",
    { class: "presets" },
    h("legend", {}, legend),
    ...presets.map((preset, i) => h("label", { class: "preset" }, inputs[i]!, label(preset))),
  );
  return {
    element,
    chosen: () => presets[inputs.findIndex((input) => input.checked)] ?? presets[1]!,
  };
}

export class MicroscopeView {
  readonly element: HTMLElement;
  readonly gallery = new CaptureGallery();
  readonly #parts: MicroscopeParts;
  readonly #image: HTMLImageElement;
  readonly #marker: HTMLElement;
  readonly #position: Record<"x" | "y" | "z", HTMLElement>;
  readonly #moveArea: HTMLElement;
  readonly #message: HTMLElement;
  readonly #xyStep: () => (typeof XY_STEPS)[number];
  readonly #zStep: () => number;
  readonly #autofocusArea: HTMLElement;
  readonly #autofocusButton: HTMLButtonElement | undefined;
  readonly #captureArea: HTMLElement;
  readonly #captureButton: HTMLButtonElement | undefined;
  #fieldOfView: { width: number; height: number } | undefined;
  #move: InvocationView | undefined;

  constructor(parts: MicroscopeParts, tokens: AccessTokens) {
    this.#parts = parts;
    const helpId = "microscope-view-help";
    this.#image = h("img", {
      class: "microscope-image",
      src: tokens.withAccessToken(parts.stream.url),
      alt: `Live view of ${parts.camera.client.title}`,
      "data-stream": parts.stream.name,
      draggable: "false",
    });
    this.#marker = h("span", { class: "click-marker", hidden: true, "aria-hidden": "true" });
    const fovSchema = parts.camera.client.description.properties.fieldOfView as
      | JsonSchema
      | undefined;
    const unit = fovSchema?.properties?.width?.unit;
    const scaleBar = new ScaleBar(typeof unit === "string" ? unit : "");
    const surface = h(
      "div",
      {
        class: "view-surface",
        tabindex: 0,
        role: "group",
        "aria-label": "Live view: move the stage",
        "aria-describedby": helpId,
        onclick: (event) => this.#onClick(event as MouseEvent),
        onkeydown: (event) => this.#onKey(event as KeyboardEvent),
      },
      this.#image,
      h("span", { class: "crosshair", "aria-hidden": "true" }),
      this.#marker,
      scaleBar.element,
    );
    this.#position = {
      x: h("dd", { "data-axis": "x" }, "…"),
      y: h("dd", { "data-axis": "y" }, "…"),
      z: h("dd", { "data-axis": "z" }, "…"),
    };
    this.#message = h("p", { class: "form-message", role: "status" });
    this.#moveArea = h("div", { class: "move-area" });
    const xy = presetGroup("Step", XY_STEPS, (preset) => preset.label);
    const z = presetGroup("Focus step", Z_STEPS, (steps) => `${steps}`);
    this.#xyStep = xy.chosen;
    this.#zStep = z.chosen;
    const autofocus = parts.autofocus;
    this.#autofocusArea = h("div", { "data-role": "autofocus" });
    this.#autofocusButton = autofocus
      ? h("button", { type: "button", onclick: () => void this.autofocus() }, "Autofocus")
      : undefined;
    this.#captureArea = h("div", { "data-role": "capture" });
    this.#captureButton = parts.camera.client.description.actions.capture
      ? h("button", { type: "button", onclick: () => void this.capture() }, "Capture")
      : undefined;

    const jog = (label: string, text: string, move: () => Promise<void>, area: string) =>
      h(
        "button",
        {
          type: "button",
          class: `secondary jog-${area}`,
          "aria-label": label,
          onclick: () => void move(),
        },
        text,
      );
    const jogPad = h(
      "div",
      { class: "jog-pad", role: "group", "aria-label": "Jog the stage" },
      jog("Move up (−y)", "▲", () => this.jog(0, -1), "up"),
      jog("Move left (−x)", "◀", () => this.jog(-1, 0), "left"),
      jog("Move right (+x)", "▶", () => this.jog(1, 0), "right"),
      jog("Move down (+y)", "▼", () => this.jog(0, 1), "down"),
      jog("Focus up (+z)", "Z+", () => this.focus(1), "zup"),
      jog("Focus down (−z)", "Z−", () => this.focus(-1), "zdown"),
    );
    const positionList = h(
      "dl",
      { class: "position", "aria-label": "Stage position in steps" },
      h("dt", {}, "x"),
      this.#position.x,
      h("dt", {}, "y"),
      this.#position.y,
      h("dt", {}, "z"),
      this.#position.z,
    );
    this.element = h(
      "section",
      { class: "card", "aria-labelledby": "microscope-title", id: "microscope-view" },
      h("h2", { id: "microscope-title", class: "visually-hidden" }, "Microscope"),
      h(
        "div",
        { class: "microscope" },
        h(
          "div",
          { class: "scope-view" },
          surface,
          h(
            "p",
            { class: "hint", id: helpId },
            "Click the image to bring that point to the centre. With the view focused: arrow keys move by the step, Page Up / Page Down focus.",
          ),
        ),
        h(
          "div",
          { class: "scope-panel" },
          h(
            "section",
            { "aria-label": "Stage" },
            h("h3", {}, "Stage"),
            positionList,
            jogPad,
            xy.element,
            z.element,
            this.#message,
            this.#moveArea,
          ),
          h(
            "section",
            { "aria-label": "Focus" },
            h("h3", {}, "Focus"),
            this.#autofocusButton
              ? h(
                  "div",
                  { class: "button-row" },
                  this.#autofocusButton,
                  h(
                    "span",
                    { class: "hint" },
                    "Blurred? Autofocus sweeps z and stops at the sharpest image.",
                  ),
                )
              : null,
            this.#autofocusArea,
          ),
          this.#captureButton
            ? h(
                "section",
                { "aria-label": "Capture" },
                h("h3", {}, "Capture"),
                this.#captureButton,
                this.#captureArea,
              )
            : null,
        ),
        this.gallery.element,
      ),
    );
    parts.stage.properties.get("position")?.onChange((value) => this.#showPosition(value));
    parts.camera.properties.get("fieldOfView")?.onChange((value) => {
      scaleBar.update(value);
      if (
        isPlainObject(value) &&
        typeof value.width === "number" &&
        typeof value.height === "number"
      )
        this.#fieldOfView = { width: value.width, height: value.height };
    });
  }

  /** Move the stage by fractions of the field of view (0.5 = half the width). */
  async moveByView(fractionX: number, fractionY: number): Promise<void> {
    const camera = this.#parts.camera;
    if (!camera.properties.has("fieldOfView")) {
      this.#say(
        `${camera.client.title} does not say its field of view (a fieldOfView property), so a click cannot be turned into a move.`,
        "problem",
      );
      return;
    }
    let view = this.#fieldOfView;
    if (!view) {
      try {
        const read = await camera.client.readProperty("fieldOfView");
        if (
          isPlainObject(read) &&
          typeof read.width === "number" &&
          typeof read.height === "number"
        )
          view = { width: read.width, height: read.height };
      } catch (error) {
        this.#say(`Cannot read the field of view: ${errorText(error)}`, "problem");
        return;
      }
    }
    if (!view) {
      this.#say("The camera's fieldOfView is not { width, height }.", "problem");
      return;
    }
    await this.moveBy({
      x: Math.round(fractionX * view.width),
      y: Math.round(fractionY * view.height),
    });
  }

  /** One jog in x and/or y (−1, 0 or +1 each) by the chosen step. */
  jog(dx: number, dy: number): Promise<void> {
    const { fraction } = this.#xyStep();
    return this.moveByView(dx * fraction, dy * fraction);
  }

  /** Move the stage by a displacement in steps; a move started here before is cancelled first. */
  async moveBy(displacement: { x?: number; y?: number; z?: number }): Promise<void> {
    const previous = this.#move;
    if (previous?.running) await previous.cancel();
    previous?.dispose();
    const stage = this.#parts.stage.client;
    const view = new InvocationView({
      client: stage,
      title: "Move",
      output: undefined,
      describeOutput: (output) => `at ${formatValue(output)}`,
    });
    this.#move = view;
    this.#moveArea.replaceChildren(view.element);
    this.#say("", "muted");
    try {
      await invoke(stage, "moveRelative", displacement, view);
    } catch (error) {
      view.showError(error);
    }
  }

  /** Move in z by the chosen focus step, up (+1) or down (-1). */
  focus(direction: 1 | -1): Promise<void> {
    return this.moveBy({ z: direction * this.#zStep() });
  }

  async autofocus(): Promise<void> {
    const autofocus = this.#parts.autofocus;
    if (!autofocus || !this.#autofocusButton) return;
    const view = new InvocationView({
      client: autofocus.panel.client,
      title: "Autofocus",
      output: undefined,
      describeOutput: (output) =>
        isPlainObject(output) && "z" in output
          ? `in focus at z=${String(output.z)}`
          : formatValue(output),
    });
    this.#autofocusArea.replaceChildren(view.element);
    this.#autofocusButton.disabled = true;
    try {
      const { output } = await invoke(autofocus.panel.client, autofocus.action, {}, view);
      await output;
    } catch (error) {
      view.showError(error);
    } finally {
      this.#autofocusButton.disabled = false;
    }
  }

  /** Capture a still: the invocation says it in one line, the picture goes to the gallery. */
  async capture(): Promise<void> {
    if (!this.#captureButton) return;
    const camera = this.#parts.camera.client;
    const view = new InvocationView({
      client: camera,
      title: "Capture",
      output: camera.description.actions.capture?.output as JsonSchema | undefined,
      takeBlob: (blob) => this.gallery.add(blob),
    });
    this.#captureArea.replaceChildren(view.element);
    this.#captureButton.disabled = true;
    try {
      const { output } = await invoke(camera, "capture", undefined, view);
      await output;
    } catch (error) {
      view.showError(error);
    } finally {
      this.#captureButton.disabled = false;
    }
  }

  #onClick(event: MouseEvent): void {
    const rect = this.#image.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const fx = (event.clientX - rect.left) / rect.width;
    const fy = (event.clientY - rect.top) / rect.height;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    this.#marker.style.left = `${fx * 100}%`;
    this.#marker.style.top = `${fy * 100}%`;
    this.#marker.hidden = false;
    void this.moveByView(fx - 0.5, fy - 0.5).finally(() => {
      this.#marker.hidden = true;
    });
  }

  #onKey(event: KeyboardEvent): void {
    const moves: Record<string, () => Promise<void>> = {
      ArrowLeft: () => this.jog(-1, 0),
      ArrowRight: () => this.jog(1, 0),
      ArrowUp: () => this.jog(0, -1),
      ArrowDown: () => this.jog(0, 1),
      PageUp: () => this.focus(1),
      PageDown: () => this.focus(-1),
    };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    void move();
  }

  #showPosition(value: unknown): void {
    if (!isPlainObject(value)) return;
    for (const axis of ["x", "y", "z"] as const) {
      const coordinate = value[axis];
      this.#position[axis].textContent = typeof coordinate === "number" ? String(coordinate) : "—";
    }
  }

  #say(text: string, kind: "ok" | "problem" | "muted"): void {
    this.#message.className = `form-message ${kind}`;
    this.#message.textContent = text;
  }
}
