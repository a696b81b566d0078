/**
 * This session's captures as a strip of thumbnails, newest first: a click opens one full
 * size in a dialog, each has a download link. The strip has a fixed height and scrolls
 * sideways, so a new capture never moves anything else on the page. The images live as
 * object URLs in this tab (a reload starts a new session).
 */
import { h } from "./dom.js";
import { type DownloadedOutput, formatBytes } from "./invocation-view.js";

/** Captures kept; the oldest leave (and their memory is released). */
const KEPT_CAPTURES = 50;

export class CaptureGallery {
  readonly element: HTMLElement;
  readonly #list: HTMLOListElement;
  readonly #empty: HTMLElement;
  readonly #dialog: HTMLDialogElement;
  readonly #full: HTMLImageElement;
  readonly #fullLink: HTMLAnchorElement;
  readonly #fullCaption: HTMLElement;
  readonly #items: { capture: DownloadedOutput; element: HTMLElement }[] = [];

  constructor() {
    this.#list = h("ol", { class: "gallery-strip", "aria-label": "Captures, newest first" });
    this.#empty = h("p", { class: "hint gallery-empty" }, "Captures of this session appear here.");
    this.#full = h("img", { class: "gallery-full", alt: "" });
    this.#fullLink = h("a", { class: "download" }, "Download");
    this.#fullCaption = h("span", {});
    this.#dialog = h(
      "dialog",
      { class: "gallery-dialog", "aria-label": "Capture, full size" },
      h(
        "div",
        { class: "gallery-dialog-bar" },
        this.#fullCaption,
        this.#fullLink,
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => this.#dialog.close() },
          "Close",
        ),
      ),
      this.#full,
    );
    // A click on the backdrop (outside the picture) closes it too.
    this.#dialog.addEventListener("click", (event) => {
      if (event.target === this.#dialog) this.#dialog.close();
    });
    this.element = h(
      "section",
      { class: "gallery", "aria-labelledby": "gallery-title", "data-role": "gallery" },
      h("h3", { id: "gallery-title" }, "Captures"),
      this.#empty,
      this.#list,
      this.#dialog,
    );
  }

  get size(): number {
    return this.#items.length;
  }

  /** Add a capture (the gallery owns its object URL from now on). */
  add(capture: DownloadedOutput, when = new Date()): void {
    const time = when.toLocaleTimeString();
    const open = h(
      "button",
      {
        type: "button",
        class: "gallery-thumb",
        "aria-label": `Open ${capture.name} (captured ${time}) full size`,
        onclick: () => this.open(capture, time),
      },
      h("img", { src: capture.url, alt: `Capture of ${time}` }),
    );
    const item = h(
      "li",
      { "data-name": capture.name },
      open,
      h(
        "a",
        { href: capture.url, download: capture.name, class: "download" },
        h("span", { class: "visually-hidden" }, `Download ${capture.name}, `),
        `${time} · ${formatBytes(capture.size)}`,
      ),
    );
    this.#list.prepend(item);
    this.#items.unshift({ capture, element: item });
    for (const old of this.#items.splice(KEPT_CAPTURES)) {
      URL.revokeObjectURL(old.capture.url);
      old.element.remove();
    }
    this.#empty.hidden = true;
  }

  /** Show a capture full size. */
  open(capture: DownloadedOutput, time: string): void {
    this.#full.src = capture.url;
    this.#full.alt = `Capture of ${time}, full size`;
    this.#fullLink.href = capture.url;
    this.#fullLink.download = capture.name;
    this.#fullLink.textContent = `Download ${capture.name} (${formatBytes(capture.size)})`;
    this.#fullCaption.textContent = time;
    if (!this.#dialog.open) this.#dialog.showModal();
  }
}
