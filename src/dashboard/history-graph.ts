/**
 * A short history of a number that changes (a sensor's temperature, a power reading):
 * the values seen on this page over the last minutes as a small line graph beside the
 * value, with its range in words for screen readers and as a tooltip. Shown once the
 * number has changed; a constant gets no graph.
 */

const SVG = "http://www.w3.org/2000/svg";
/** How far back the graph reaches, and at most how many points it keeps. */
const SPAN_MS = 5 * 60_000;
const MAX_POINTS = 300;
const WIDTH = 96;
const HEIGHT = 24;

export class HistoryGraph {
  readonly element: SVGSVGElement;
  readonly #line: SVGPolylineElement;
  readonly #title: SVGTitleElement;
  readonly #label: string;
  readonly #unit: string;
  readonly #points: { at: number; value: number }[] = [];

  /** @param label what the number is, e.g. "Sensor temperature" */
  constructor(label: string, unit = "") {
    this.#label = label;
    this.#unit = unit ? ` ${unit}` : "";
    this.element = document.createElementNS(SVG, "svg");
    this.element.setAttribute("class", "history-graph");
    this.element.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    this.element.setAttribute("width", String(WIDTH));
    this.element.setAttribute("height", String(HEIGHT));
    this.element.setAttribute("role", "img");
    this.#title = document.createElementNS(SVG, "title");
    this.#line = document.createElementNS(SVG, "polyline");
    this.#line.setAttribute("fill", "none");
    this.element.append(this.#title, this.#line);
    this.element.style.display = "none";
  }

  /** How many values are held (for tests and the tooltip). */
  get size(): number {
    return this.#points.length;
  }

  /** A new value (non-numbers are ignored). */
  add(value: unknown, at = Date.now()): void {
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    this.#points.push({ at, value });
    while (
      this.#points.length > MAX_POINTS ||
      (this.#points.length > 2 && at - this.#points[0]!.at > SPAN_MS)
    ) {
      this.#points.shift();
    }
    this.#draw();
  }

  #draw(): void {
    const values = this.#points.map((p) => p.value);
    const low = Math.min(...values);
    const high = Math.max(...values);
    if (this.#points.length < 2 || low === high) {
      this.element.style.display = "none";
      return;
    }
    this.element.style.display = "";
    const first = this.#points[0]!.at;
    const span = Math.max(1, this.#points.at(-1)!.at - first);
    const points = this.#points.map(({ at, value }) => {
      const x = ((at - first) / span) * (WIDTH - 2) + 1;
      const y = HEIGHT - 2 - ((value - low) / (high - low)) * (HEIGHT - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    this.#line.setAttribute("points", points.join(" "));
    const minutes = Math.max(1, Math.round(span / 60_000));
    const text = `${this.#label}: ${round(low)} to ${round(high)}${this.#unit} over the last ${minutes === 1 ? "minute" : `${minutes} minutes`}`;
    this.#title.textContent = text;
    this.element.setAttribute("aria-label", text);
  }
}

const round = (value: number) => String(Number(value.toPrecision(4)));
