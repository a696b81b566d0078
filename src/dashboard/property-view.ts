/**
 * One property, in one compact row: its title, its live value (a number that changes also
 * gets a short history graph) and, when writable, an inline form generated from its
 * schema. The value is checked against the schema before it is sent (the message appears
 * next to the field and nothing is sent); the server's 400 Problem Details are shown the
 * same way. The form follows live changes until the person starts editing it. Only a
 * value nobody announces changes of has a Refresh button.
 */
import { HttpError } from "../client/client-errors.js";
import type { ThingClient } from "../client/thing-client.js";
import type { PropertyAffordance } from "../client/thing-description.js";
import { errorText, formatValue, h } from "./dom.js";
import { HistoryGraph } from "./history-graph.js";
import { checkValue, type JsonSchema } from "./schema-check.js";
import { collect, type SchemaField, schemaField, serverProblems } from "./schema-form.js";

export class PropertyView {
  readonly element: HTMLElement;
  readonly name: string;
  readonly #client: ThingClient;
  readonly #schema: JsonSchema;
  readonly #unit: string | undefined;
  readonly #value: HTMLElement;
  readonly #field: SchemaField | undefined;
  readonly #form: HTMLFormElement | undefined;
  readonly #message: HTMLElement;
  readonly #listeners = new Set<(value: unknown) => void>();
  readonly #history: HistoryGraph | undefined;
  #current: unknown;

  constructor(client: ThingClient, name: string, affordance: PropertyAffordance) {
    this.#client = client;
    this.name = name;
    this.#schema = affordance as JsonSchema;
    this.#unit = typeof affordance.unit === "string" ? affordance.unit : undefined;
    const title = affordance.title ?? name;
    const writable = affordance.readOnly !== true;
    const titleId = `prop-title-${client.base}-${name}`.replace(/[^A-Za-z0-9_-]/g, "_");
    // A write-only value (a password, say) is never read back.
    const placeholder = affordance.writeOnly === true ? "(write-only)" : "…";
    this.#value = h("output", { class: "property-value", "aria-labelledby": titleId }, placeholder);
    this.#message = h("p", { class: "form-message", role: "status" });
    const type = (affordance as JsonSchema).type;
    if (type === "number" || type === "integer") {
      this.#history = new HistoryGraph(title, this.#unit);
    }

    if (writable) {
      // The title and description are shown once, above; the field adds the limits.
      const valueSchema = { ...this.#schema, title: undefined, description: undefined };
      this.#field = schemaField(valueSchema, {
        label: "New value",
        name: `${name}-value`,
        required: true,
      });
      this.#form = h(
        "form",
        {
          novalidate: true,
          "aria-label": `Set ${title}`,
          onsubmit: (event) => this.#submit(event),
        },
        this.#field.element,
        h("button", { type: "submit" }, "Set"),
        this.#message,
      );
    }
    const refresh = affordance.observable
      ? null
      : h(
          "button",
          {
            type: "button",
            class: "secondary",
            "aria-label": `Refresh ${title}`,
            onclick: () => void this.refresh(),
          },
          "Refresh",
        );
    this.element = h(
      "div",
      {
        class: `property ${writable ? "writable" : "read-only"}`,
        "data-property": name,
      },
      h(
        "div",
        { class: "property-head" },
        h(
          "span",
          { id: titleId, class: "property-title", title: affordance.description ?? "" },
          h("strong", {}, title),
          " ",
          h("span", { class: "name" }, name),
        ),
        h("span", { class: "property-reading" }, this.#value, this.#history?.element, refresh),
      ),
      affordance.description
        ? h("p", { class: "hint property-description" }, affordance.description)
        : null,
      this.#form ?? (affordance.observable ? null : this.#message),
    );
  }

  get value(): unknown {
    return this.#current;
  }

  /** Be told of every new value (e.g. the microscope view follows the stage position). */
  onChange(listener: (value: unknown) => void): void {
    this.#listeners.add(listener);
    if (this.#current !== undefined) listener(this.#current);
  }

  /** A new value from the server: show it, and in the form unless the person is editing. */
  update(value: unknown): void {
    this.#current = value;
    this.#value.textContent = formatValue(value, this.#unit);
    this.#history?.add(value);
    const editing = this.#form?.contains(document.activeElement) ?? false;
    if (this.#field && !this.#field.dirty && !editing) this.#field.write(value);
    for (const listener of this.#listeners) listener(value);
  }

  /** Read the value again (for properties whose changes are not announced). */
  async refresh(): Promise<void> {
    try {
      this.update(await this.#client.readProperty(this.name));
    } catch (error) {
      this.#say(errorText(error), "problem");
    }
  }

  async #submit(event: Event): Promise<void> {
    event.preventDefault();
    const field = this.#field!;
    const { value, problems } = collect(field, this.#schema, true, checkValue);
    field.showProblems(problems);
    if (problems.length > 0) {
      this.#say("Not sent: the value breaks the property's rules.", "problem");
      field.focusFirstProblem();
      return;
    }
    this.#say("Saving…", "muted");
    try {
      await this.#client.writeProperty(this.name, value);
      field.markClean();
      this.#say("Saved.", "ok");
      // Observers hear of the change; a property that is not observed is read back.
      if (this.#schema.observable !== true) await this.refresh();
    } catch (error) {
      if (error instanceof HttpError && error.status === 400) {
        field.showProblems(serverProblems(error.problem, this.name));
        field.focusFirstProblem();
      }
      this.#say(`Not saved: ${errorText(error)}`, "problem");
    }
  }

  #say(text: string, kind: "ok" | "problem" | "muted"): void {
    this.#message.className = `form-message ${kind}`;
    this.#message.textContent = text;
  }
}
