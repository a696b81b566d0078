/**
 * Everything about one Thing, built from its Thing Description: title and description,
 * its streams, every property (live), every action (with forms) and an event feed.
 */
import type { ThingClient } from "../client/thing-client.js";
import type { AccessTokens } from "./access-tokens.js";
import { ActionView } from "./action-view.js";
import { errorText, h } from "./dom.js";
import { EventFeed } from "./event-feed.js";
import { PropertyView } from "./property-view.js";
import { type StreamLink, StreamView, streamLinks } from "./stream-view.js";
import { followThing } from "./thing-feeds.js";

export interface ThingPanelOptions {
  /** Short, unique name for ids and the navigation (the server's name for the Thing). */
  id: string;
  tokens: AccessTokens;
  /** Whether a stream starts live (the page keeps few live: each holds a connection). */
  startLive: (link: StreamLink) => boolean;
  /** Streams shown elsewhere (the microscope view) and so left out here. */
  shownElsewhere: (link: StreamLink) => boolean;
}

export class ThingPanel {
  readonly client: ThingClient;
  readonly id: string;
  readonly element: HTMLElement;
  readonly properties = new Map<string, PropertyView>();
  readonly actions = new Map<string, ActionView>();
  readonly streams: StreamLink[];
  readonly #options: ThingPanelOptions;
  readonly #feed: EventFeed | undefined;
  readonly #status: HTMLElement;
  readonly #streamArea: HTMLElement;

  constructor(client: ThingClient, options: ThingPanelOptions) {
    this.client = client;
    this.id = options.id;
    this.#options = options;
    const td = client.description;
    this.streams = streamLinks(client);
    for (const [name, affordance] of Object.entries(td.properties)) {
      this.properties.set(name, new PropertyView(client, name, affordance));
    }
    for (const [name, affordance] of Object.entries(td.actions)) {
      this.actions.set(name, new ActionView(client, name, affordance));
    }
    const eventTitles = Object.fromEntries(
      Object.entries(td.events).map(([name, event]) => [name, event.title ?? name]),
    );
    if (Object.keys(eventTitles).length > 0) this.#feed = new EventFeed(eventTitles);
    this.#status = h("p", { class: "problem", role: "alert", hidden: true });
    this.#streamArea = h("div", { class: "streams" });

    const titleId = `thing-title-${options.id}`;
    this.element = h(
      "section",
      {
        class: "card thing",
        id: `thing-${options.id}`,
        "aria-labelledby": titleId,
        "data-thing": options.id,
      },
      h(
        "div",
        { class: "thing-header" },
        h("h2", { id: titleId }, td.title),
        h("span", { class: "name" }, options.id),
        h("a", { href: client.url, target: "_blank", rel: "noopener" }, "Thing Description"),
      ),
      td.description ? h("p", { class: "hint" }, td.description) : null,
      this.#status,
      this.#streamArea,
      h(
        "div",
        { class: "thing-grid" },
        this.properties.size > 0
          ? h(
              "div",
              { class: "property-groups" },
              ...propertyGroups(td.properties, this.properties),
            )
          : null,
        this.actions.size > 0
          ? h(
              "div",
              {},
              h("h3", {}, "Actions"),
              ...[...this.actions.values()].map((a) => a.element),
            )
          : null,
      ),
      this.#feed?.element,
    );
  }

  /** Show the streams (after the microscope view has taken its own) and follow the Thing. */
  start(signal: AbortSignal): void {
    for (const link of this.streams) {
      if (this.#options.shownElsewhere(link)) continue;
      const view = new StreamView(link, this.#options.tokens, {
        live: this.#options.startLive(link),
        thingTitle: this.client.title,
      });
      this.#streamArea.append(view.element);
    }
    const onError = (error: unknown) => this.#problem(`Live updates stopped: ${errorText(error)}`);
    void followThing(this.client, "properties", {
      signal,
      // (Re)connected: read every value now, so nothing changed while away is missed.
      onOpen: () => void this.#readAll(),
      onMessage: ({ name, data }) => this.properties.get(name)?.update(data),
      onError,
    });
    // Properties nobody announces changes of still need a first value.
    if (!Object.values(this.client.description.properties).some((p) => p.observable))
      void this.#readAll();
    const feed = this.#feed;
    if (feed) {
      void followThing(this.client, "events", {
        signal,
        onMessage: ({ name, data }) => feed.add(name, data),
        onError,
      });
    }
  }

  async #readAll(): Promise<void> {
    try {
      const values = await this.client.readAllProperties();
      for (const [name, value] of Object.entries(values)) this.properties.get(name)?.update(value);
    } catch (error) {
      this.#problem(`Cannot read the properties: ${errorText(error)}`);
    }
  }

  #problem(text: string): void {
    this.#status.textContent = text;
    this.#status.hidden = false;
  }
}

/** Properties in two groups: what the Thing reports (read-only), then what can be set. */
function propertyGroups(
  affordances: Record<string, { readOnly?: boolean }>,
  views: ReadonlyMap<string, PropertyView>,
): HTMLElement[] {
  const groups: HTMLElement[] = [];
  for (const [title, readOnly] of [
    ["Readings", true],
    ["Settings", false],
  ] as const) {
    const members = [...views].filter(
      ([name]) => (affordances[name]?.readOnly === true) === readOnly,
    );
    if (members.length === 0) continue;
    groups.push(
      h(
        "div",
        { class: "property-group", "data-group": title.toLowerCase() },
        h("h3", {}, title),
        ...members.map(([, view]) => view.element),
      ),
    );
  }
  return groups;
}
