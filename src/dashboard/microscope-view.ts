/**
 * The microscope, when the page finds one among the Things: a camera that streams, a
 * stage with a `position` and a `moveRelative` action, and optionally an autofocus.
 * The live view is the centre of the page: a click brings the clicked point to the
 * centre (the camera's `fieldOfView`, in stage steps, turns image fractions into a
 * move), arrow keys move by a quarter of the view, Page Up/Down focus. Beside it: the
 * live position, focus buttons, autofocus with its progress, and capture, whose JPEG
 * opens on the page with a download link.
 */
import type { TokenUrls } from "./access-tokens.js";
import { invoke } from "./action-view.js";
import { errorText, formatValue, h, isPlainObject } from "./dom.js";
import { InvocationView } from "./invocation-view.js";
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

/** Fraction of the view one arrow key moves the stage by. */
const KEY_STEP = 0.25;

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

export class MicroscopeView {
  readonly element: HTMLElement;
  readonly #parts: MicroscopeParts;
  readonly #image: HTMLImageElement;
  readonly #surface: HTMLElement;
  readonly #marker: HTMLElement;
  readonly #position: Record<"x" | "y" | "z", HTMLElement>;
  readonly #moveArea: HTMLElement;
  readonly #message: HTMLElement;
  readonly #focusStep: HTMLInputElement;
  readonly #autofocusArea: HTMLElement;
  readonly #autofocusButton: HTMLButtonElement | undefined;
  readonly #captureArea: HTMLElement;
  readonly #captureButton: HTMLButtonElement | undefined;
  #move: InvocationView | undefined;
  #capture: InvocationView | undefined;

  /**
   * @param tokens stream URLs with the camera's token (its origin only)
   * @param options.operate false for a token that may only watch (viewer role): the view
   *   shows the stream and the position, and no control that moves or captures
   */
  constructor(parts: MicroscopeParts, tokens: TokenUrls, options: { operate?: boolean } = {}) {
    this.#parts = parts;
    const operate = options.operate ?? true;
    const helpId = "microscope-view-help";
    this.#image = h("img", {
      class: "microscope-image",
      src: tokens.withAccessToken(parts.stream.url),
      alt: `Live view of ${parts.camera.client.title}`,
      "data-stream": parts.stream.name,
      draggable: "false",
    });
    this.#marker = h("span", { class: "click-marker", hidden: true, "aria-hidden": "true" });
    this.#surface = h(
      "div",
      operate
        ? {
            class: "view-surface",
            tabindex: 0,
            role: "group",
            "aria-label": "Live view: move the stage",
            "aria-describedby": helpId,
            onclick: (event) => this.#onClick(event as MouseEvent),
            onkeydown: (event) => this.#onKey(event as KeyboardEvent),
          }
        : { class: "view-surface", role: "group", "aria-label": "Live view" },
      this.#image,
      h("span", { class: "crosshair", "aria-hidden": "true" }),
      this.#marker,
    );
    this.#position = {
      x: h("dd", { "data-axis": "x" }, "…"),
      y: h("dd", { "data-axis": "y" }, "…"),
      z: h("dd", { "data-axis": "z" }, "…"),
    };
    this.#message = h("p", { class: "form-message", role: "status" });
    this.#moveArea = h("div", { class: "move-area" });
    this.#focusStep = h("input", {
      id: "focus-step",
      type: "number",
      min: 1,
      max: 10000,
      step: 1,
      value: 100,
      inputmode: "numeric",
    });
    const autofocus = parts.autofocus;
    this.#autofocusArea = h("div", { "data-role": "autofocus" });
    this.#autofocusButton = autofocus
      ? h("button", { type: "button", onclick: () => void this.autofocus() }, "Autofocus")
      : undefined;
    this.#captureArea = h("div", { "data-role": "capture" });
    this.#captureButton = parts.camera.client.description.actions.capture
      ? h("button", { type: "button", onclick: () => void this.capture() }, "Capture")
      : undefined;

    const positionList = h(
      "dl",
      { class: "position", "aria-label": "Stage position in steps" },
      h("dt", {}, "x"),
      this.#position.x,
      h("dt", {}, "y"),
      this.#position.y,
      h("dt", {}, "z (focus)"),
      this.#position.z,
    );
    this.element = h(
      "section",
      { class: "card", "aria-labelledby": "microscope-title", id: "microscope-view" },
      h("h2", { id: "microscope-title" }, "Microscope"),
      h(
        "div",
        { class: "microscope" },
        h(
          "div",
          { class: "scope-view" },
          this.#surface,
          h(
            "p",
            { class: "hint", id: helpId },
            operate
              ? "Click the image to bring that point to the centre. With the view focused: arrow keys move by a quarter of the view, Page Up / Page Down focus."
              : "View only: this token has the viewer role, so moving, focusing and capturing are not offered.",
          ),
        ),
        h(
          "div",
          { class: "scope-panel" },
          h(
            "section",
            { "aria-label": "Position" },
            h("h3", {}, "Stage"),
            positionList,
            this.#message,
            this.#moveArea,
          ),
          h(
            "section",
            { "aria-label": "Focus", hidden: !operate },
            h("h3", {}, "Focus"),
            h(
              "div",
              { class: "button-row" },
              h(
                "button",
                { type: "button", class: "secondary", onclick: () => void this.focus(1) },
                "Focus up",
              ),
              h(
                "button",
                { type: "button", class: "secondary", onclick: () => void this.focus(-1) },
                "Focus down",
              ),
            ),
            h(
              "div",
              { class: "field" },
              h("label", { for: "focus-step" }, "Focus step (motor steps)"),
              this.#focusStep,
            ),
            this.#autofocusButton ? h("div", { class: "button-row" }, this.#autofocusButton) : null,
            this.#autofocusArea,
          ),
          this.#captureButton
            ? h(
                "section",
                { "aria-label": "Capture", hidden: !operate },
                h("h3", {}, "Capture"),
                this.#captureButton,
                this.#captureArea,
              )
            : null,
        ),
      ),
    );
    parts.stage.properties.get("position")?.onChange((value) => this.#showPosition(value));
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
    let view: unknown;
    try {
      view = await camera.client.readProperty("fieldOfView");
    } catch (error) {
      this.#say(`Cannot read the field of view: ${errorText(error)}`, "problem");
      return;
    }
    if (!isPlainObject(view) || typeof view.width !== "number" || typeof view.height !== "number") {
      this.#say("The camera's fieldOfView is not { width, height }.", "problem");
      return;
    }
    await this.moveBy({
      x: Math.round(fractionX * view.width),
      y: Math.round(fractionY * view.height),
    });
  }

  /** Move the stage by a displacement in steps; a move started here before is cancelled first. */
  async moveBy(displacement: { x?: number; y?: number; z?: number }): Promise<void> {
    const previous = this.#move;
    if (previous?.running) await previous.cancel();
    const stage = this.#parts.stage.client;
    const view = new InvocationView({
      client: stage,
      title: "Move",
      output: undefined,
      describeOutput: (output) => `at ${formatValue(output)}`,
    });
    this.#move = view;
    this.#moveArea.replaceChildren(view.element);
    this.#say(`Move by ${formatValue(displacement)} steps`, "muted");
    try {
      await invoke(stage, "moveRelative", displacement, view);
    } catch (error) {
      view.showError(error);
    }
  }

  /** Move in z by the focus step, up (+1) or down (-1). */
  async focus(direction: 1 | -1): Promise<void> {
    const step = Number(this.#focusStep.value);
    if (!Number.isInteger(step) || step < 1) {
      this.#say("The focus step must be a whole number of steps, at least 1.", "problem");
      this.#focusStep.focus();
      return;
    }
    await this.moveBy({ z: direction * step });
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
          ? `In focus at z=${String(output.z)}.`
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

  async capture(): Promise<void> {
    if (!this.#captureButton) return;
    const camera = this.#parts.camera.client;
    this.#capture?.dispose();
    const view = new InvocationView({
      client: camera,
      title: "Capture",
      output: camera.description.actions.capture?.output as JsonSchema | undefined,
    });
    this.#capture = view;
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
      ArrowLeft: () => this.moveByView(-KEY_STEP, 0),
      ArrowRight: () => this.moveByView(KEY_STEP, 0),
      ArrowUp: () => this.moveByView(0, -KEY_STEP),
      ArrowDown: () => this.moveByView(0, KEY_STEP),
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
