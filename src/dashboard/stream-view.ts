/**
 * Live MJPEG streams, from the TD's links (`type: multipart/x-mixed-replace`), shown in
 * `<img>`: the browser decodes the stream itself. A paused stream's image is pointed at
 * an empty picture, which closes its connection (each live image holds one of the
 * browser's six per server) and leaves the server no frame to encode for it.
 */
import type { ThingClient } from "../client/thing-client.js";
import type { TokenUrls } from "./access-tokens.js";
import { h } from "./dom.js";

const MJPEG_TYPE = "multipart/x-mixed-replace";
/** A transparent 1×1 GIF: what a paused stream's image shows. */
const EMPTY_IMAGE = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==";

export interface StreamLink {
  /** The link's URL relative to the Thing (e.g. `stream`). */
  name: string;
  url: string;
  /** The newest frame as a JPEG, when the TD links one (`<stream>/snapshot`). */
  snapshotUrl: string | undefined;
  title: string;
}

/** The MJPEG streams a Thing links to. */
export function streamLinks(client: ThingClient): StreamLink[] {
  const links = client.description.links;
  return links
    .filter((link) => link.type?.toLowerCase().startsWith(MJPEG_TYPE))
    .map((link) => {
      const url = client.resolve(link.href);
      const name = url.startsWith(client.base) ? url.slice(client.base.length) : link.href;
      const snapshot = links.find(
        (other) =>
          other.type?.startsWith("image/") &&
          client.resolve(other.href) === `${url.replace(/\/$/, "")}/snapshot`,
      );
      const title = typeof link.title === "string" ? link.title : name;
      return {
        name,
        url,
        snapshotUrl: snapshot ? client.resolve(snapshot.href) : undefined,
        title,
      };
    });
}

export class StreamView {
  readonly element: HTMLElement;
  readonly image: HTMLImageElement;
  readonly #link: StreamLink;
  readonly #tokens: TokenUrls;
  readonly #toggle: HTMLButtonElement;
  readonly #placeholder: HTMLElement;
  #live = false;

  constructor(link: StreamLink, tokens: TokenUrls, options: { live: boolean; thingTitle: string }) {
    this.#link = link;
    this.#tokens = tokens;
    this.image = h("img", {
      class: "stream-image",
      alt: `${link.title} of ${options.thingTitle} (live)`,
      "data-stream": link.name,
      src: EMPTY_IMAGE,
    });
    this.#toggle = h(
      "button",
      { type: "button", class: "secondary", onclick: () => this.#flip() },
      "Play",
    );
    this.#placeholder = h(
      "p",
      { class: "stream-paused muted" },
      `${link.title}: not playing (press Play to watch).`,
    );
    const snapshot = link.snapshotUrl
      ? h(
          "a",
          { href: tokens.withAccessToken(link.snapshotUrl), target: "_blank", rel: "noopener" },
          "Snapshot",
        )
      : null;
    this.element = h(
      "figure",
      { class: "stream" },
      this.image,
      this.#placeholder,
      h(
        "figcaption",
        {},
        h("strong", {}, link.title),
        this.#toggle,
        h(
          "a",
          { href: tokens.withAccessToken(link.url), target: "_blank", rel: "noopener" },
          "Open stream",
        ),
        snapshot,
      ),
    );
    if (options.live) this.play();
    else this.pause();
  }

  play(): void {
    this.#live = true;
    this.image.src = this.#tokens.withAccessToken(this.#link.url);
    this.image.hidden = false;
    this.#placeholder.hidden = true;
    this.#toggle.textContent = "Pause";
  }

  pause(): void {
    this.#live = false;
    this.image.src = EMPTY_IMAGE;
    this.image.hidden = true;
    this.#placeholder.hidden = false;
    this.#toggle.textContent = "Play";
  }

  #flip(): void {
    if (this.#live) this.pause();
    else this.play();
  }
}
