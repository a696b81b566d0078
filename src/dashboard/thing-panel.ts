/**
 * Everything about one Thing, built from its Thing Description: title and description,
 * its streams, every property (live), every action (with forms) and an event feed.
 */
import type { ThingClient } from "../client/thing-client.js";
import type { OriginAccess } from "./access-tokens.js";
import { ActionView } from "./action-view.js";
import { errorText, h } from "./dom.js";
import { EventFeed } from "./event-feed.js";
import { hasForm, type Refusal } from "./form-policy.js";
import { PropertyView } from "./property-view.js";
import { type StreamLink, StreamView, streamLinks } from "./stream-view.js";
import { followThing } from "./thing-feeds.js";

export interface ThingPanelOptions {
  /** Short, unique name for ids and the navigation (the server's name for the Thing). */
  id: string;
  /** Requests and stream URLs for this Thing's origin only, with its token. */
  access: OriginAccess;
  /** Forms and links of its TD the page will not use, and why (shown on the panel). */
  refused: readonly Refusal[];
  /** The token's role on the Thing's server, when it says (`viewer`: no controls that change anything). */
  role: string | undefined;
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
  /** Whether the token may write and invoke here (false for a viewer). */
  readonly operate: boolean;
  /** Stream URLs and requests for this Thing's origin only. */
  readonly access: OriginAccess;
  readonly #options: ThingPanelOptions;
  readonly #feed: EventFeed | undefined;
  readonly #status: HTMLElement;
  readonly #streamArea: HTMLElement;

  constructor(client: ThingClient, options: ThingPanelOptions) {
    this.client = client;
    this.id = options.id;
    this.#options = options;
    this.access = options.access;
    this.operate = options.role !== "viewer";
    const td = client.description;
    this.streams = streamLinks(client);
    const viewOnly = "view only: this token has the viewer role";
    for (const [name, affordance] of Object.entries(td.properties)) {
      const canWrite = affordance.readOnly !== true && hasForm(affordance.forms, "writeproperty");
      this.properties.set(
        name,
        new PropertyView(client, name, affordance, {
          writable: canWrite && this.operate,
          why: canWrite && !this.operate ? viewOnly : undefined,
        }),
      );
    }
    for (const [name, affordance] of Object.entries(td.actions)) {
      const canInvoke = hasForm(affordance.forms, "invokeaction");
      this.actions.set(
        name,
        new ActionView(client, name, affordance, {
          invocable: canInvoke && this.operate,
          why: canInvoke ? viewOnly : "not offered: its form was refused (see above)",
        }),
      );
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
      refusalList(options.refused),
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
      const view = new StreamView(link, this.access, {
        live: this.#options.startLive(link),
        thingTitle: this.client.title,
      });
      this.#streamArea.append(view.element);
    }
    const onError = (error: unknown) => this.#problem(`Live updates stopped: ${errorText(error)}`);
    const td = this.client.description;
    // Observed through a form the page kept (a refused one observes nothing).
    const observed =
      hasForm(td.forms, "observeallproperties") ||
      Object.values(td.properties).some(
        (p) => p.observable === true && hasForm(p.forms, "observeproperty"),
      );
    if (observed) {
      void followThing(this.client, "properties", {
        signal,
        // (Re)connected: read every value now, so nothing changed while away is missed.
        onOpen: () => void this.#readAll(),
        onMessage: ({ name, data }) => this.properties.get(name)?.update(data),
        onError,
      });
    } else {
      // Properties nobody announces changes of still need a first value.
      void this.#readAll();
    }
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

/** What the page will not do for this TD, and why: a TD may come from anyone. */
function refusalList(refused: readonly Refusal[]): HTMLElement | null {
  if (refused.length === 0) return null;
  return h(
    "div",
    { class: "refusals", role: "note" },
    h(
      "p",
      { class: "problem" },
      `Refused ${refused.length} form${refused.length === 1 ? "" : "s"} or link${refused.length === 1 ? "" : "s"} of this Thing Description:`,
    ),
    h(
      "ul",
      {},
      ...refused.map((refusal) =>
        h(
          "li",
          { "data-refused": refusal.where },
          `${refusal.where} (${refusal.ops.join(", ") || "no operation"}) → ${refusal.href}: ${refusal.reason}`,
        ),
      ),
    ),
  );
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
