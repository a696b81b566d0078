/**
 * A scale bar over the live view, from the camera's `fieldOfView` (the view's width in
 * the unit its schema gives: stage steps for the simulated camera, µm for a calibrated
 * one): a round length (1, 2 or 5 × 10ⁿ) about a fifth of the view wide.
 */
import { h, isPlainObject } from "./dom.js";

/** The largest 1, 2 or 5 × 10ⁿ not above `limit`. */
export function roundLength(limit: number): number {
  const power = 10 ** Math.floor(Math.log10(limit));
  for (const step of [5, 2, 1]) if (step * power <= limit) return step * power;
  return power;
}

export class ScaleBar {
  readonly element: HTMLElement;
  readonly #bar: HTMLElement;
  readonly #label: HTMLElement;
  readonly #unit: string;

  constructor(unit: string) {
    this.#unit = unit;
    this.#bar = h("span", { class: "scale-bar-line" });
    this.#label = h("span", { class: "scale-bar-label" });
    this.element = h(
      "span",
      { class: "scale-bar", hidden: true, "data-role": "scale-bar" },
      this.#bar,
      this.#label,
    );
  }

  /** A new field of view `{ width, height }`; anything else hides the bar. */
  update(fieldOfView: unknown): void {
    const width = isPlainObject(fieldOfView) ? fieldOfView.width : undefined;
    if (typeof width !== "number" || !(width > 0)) {
      this.element.hidden = true;
      return;
    }
    const length = roundLength(width / 5);
    this.#bar.style.width = `${(length / width) * 100}%`;
    this.#label.textContent = `${length.toLocaleString("en")} ${this.#unit}`.trim();
    this.element.setAttribute("aria-label", `Scale: the bar is ${this.#label.textContent}`);
    this.element.hidden = false;
  }
}
