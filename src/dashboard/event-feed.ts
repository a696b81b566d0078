/**
 * A Thing's events as they happen, newest first, with the time and the data. The list
 * is a polite live region: a screen reader announces new events without interrupting.
 */
import { formatValue, h } from "./dom.js";

/** Events kept on the page per Thing. */
const KEPT_EVENTS = 50;

export class EventFeed {
  readonly element: HTMLElement;
  readonly #list: HTMLOListElement;
  readonly #empty: HTMLElement;
  readonly #titles: Record<string, string>;

  /** @param titles event name → title, for the events the Thing declares */
  constructor(titles: Record<string, string>) {
    this.#titles = titles;
    this.#list = h("ol", { class: "events", "aria-live": "polite", "aria-label": "Events" });
    this.#empty = h(
      "p",
      { class: "muted" },
      `None yet. Listening for: ${Object.values(titles).join(", ")}.`,
    );
    this.element = h(
      "div",
      { class: "event-feed" },
      h("h3", {}, "Events"),
      this.#empty,
      this.#list,
    );
  }

  add(name: string, data: unknown): void {
    this.#empty.hidden = true;
    const now = new Date();
    this.#list.prepend(
      h(
        "li",
        { "data-event": name },
        h("time", { datetime: now.toISOString() }, now.toLocaleTimeString()),
        h("strong", {}, this.#titles[name] ?? name),
        " ",
        formatValue(data),
      ),
    );
    while (this.#list.childElementCount > KEPT_EVENTS) this.#list.lastElementChild?.remove();
  }
}
