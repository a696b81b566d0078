/**
 * A tiny element builder. Text from Thing Descriptions and servers is only ever set as
 * text (never parsed as HTML), so a title like `<img onerror=…>` shows as written.
 */

export type Child = Node | string | number | null | undefined | false;

/** Attributes (`true` → present, `false`/`undefined` → absent) and `on…` listeners. */
export type Props = Record<
  string,
  string | number | boolean | undefined | ((event: Event) => void)
>;

/**
 * Create an element with attributes, listeners and children.
 *
 * @example
 * ```ts
 * h("button", { type: "button", onclick: () => cancel() }, "Cancel");
 * ```
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else if (value !== false && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  append(element, ...children);
  return element;
}

/** Append children, skipping empty ones. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let counter = 0;
/** A page-unique id for label/aria pairs, readable in the DOM (`prop-camera-gain-3`). */
export function uid(...parts: string[]): string {
  counter += 1;
  const slug = parts.join("-").replace(/[^A-Za-z0-9_-]/g, "_");
  return `${slug}-${counter}`;
}

/** A value as short, readable text: numbers as they are, objects as compact JSON. */
export function formatValue(value: unknown, unit?: string): string {
  if (value === undefined) return "—";
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number")
    text = Number.isInteger(value) ? String(value) : formatNumber(value);
  else if (isPlainObject(value) && Object.values(value).every((v) => typeof v !== "object"))
    text = Object.entries(value)
      .map(([key, v]) => `${key} ${typeof v === "number" ? formatNumber(v) : JSON.stringify(v)}`)
      .join(", ");
  else text = JSON.stringify(value);
  return unit ? `${text} ${unit}` : text;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A message for any error, with the server's Problem Details detail when there is one. */
export function errorText(error: unknown): string {
  if (isPlainObject(error) && isPlainObject(error.problem)) {
    const { title, detail } = error.problem;
    if (typeof detail === "string")
      return typeof title === "string" ? `${title}: ${detail}` : detail;
    if (typeof title === "string") return title;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
