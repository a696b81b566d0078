/**
 * Asks for an access token when a server answers 401: one small form per server, shown
 * above the page. The token is kept for this tab only (sessionStorage) and the page
 * reloads to use it everywhere (requests, event streams, live images).
 */
import type { AccessTokens } from "./access-tokens.js";
import { h, uid } from "./dom.js";

export class TokenPrompt {
  readonly #container: HTMLElement;
  readonly #tokens: AccessTokens;
  readonly #asked = new Set<string>();

  constructor(container: HTMLElement, tokens: AccessTokens) {
    this.#container = container;
    this.#tokens = tokens;
  }

  /** Show the form for `origin` (once, however many requests were refused). */
  ask(origin: string): void {
    if (this.#asked.has(origin)) return;
    this.#asked.add(origin);
    const id = uid("token", origin);
    const had = this.#tokens.get(origin) !== undefined;
    const input = h("input", {
      id,
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
    });
    const form = h(
      "form",
      {
        "aria-label": `Access token for ${origin}`,
        onsubmit: (event) => {
          event.preventDefault();
          this.#tokens.set(origin, input.value.trim());
          location.reload();
        },
      },
      h("div", { class: "field" }, h("label", { for: id }, "Access token"), input),
      h("button", { type: "submit" }, "Use token"),
    );
    this.#container.append(
      h("h2", { id: "token-title" }, "Access token needed"),
      h(
        "p",
        {},
        had
          ? `The server at ${origin} did not accept the token given; enter another.`
          : `The server at ${origin} needs an access token (ask whoever runs it). It is kept for this tab only.`,
      ),
      form,
    );
    this.#container.hidden = false;
    input.focus();
  }
}
