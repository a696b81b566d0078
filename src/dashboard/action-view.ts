/**
 * One action: a form generated from its input schema, checked before it is sent, and
 * below it its invocations (newest first) with progress, log, cancel and output.
 */
import { HttpError } from "../client/client-errors.js";
import type { InvocationHandle } from "../client/invocation-handle.js";
import type { ThingClient } from "../client/thing-client.js";
import type { ActionAffordance } from "../client/thing-description.js";
import { errorText, h } from "./dom.js";
import { InvocationView } from "./invocation-view.js";
import { checkValue, type JsonSchema, schemaType } from "./schema-check.js";
import { collect, type SchemaField, schemaField, serverProblems } from "./schema-form.js";

/** Invocations shown per action; older ones leave the page. */
const KEPT_INVOCATIONS = 3;
/** Longest pause between two status polls (see `invoke`). */
export const POLL_INTERVAL_MS = 250;

/**
 * Invoke an action and follow it in `view`. Invocations are followed by polling, not
 * by an event stream each: streams hold one of the browser's six connections per
 * server for their whole life, and a cancel must never wait for a free one.
 */
export async function invoke(
  client: ThingClient,
  name: string,
  input: unknown,
  view: InvocationView,
): Promise<{ handle: InvocationHandle; output: Promise<unknown> }> {
  const handle = await client.invokeAction(name, input, {
    watch: "poll",
    onProgress: (update) => view.update(update),
  });
  return { handle, output: view.follow(handle) };
}

export class ActionView {
  readonly element: HTMLElement;
  readonly name: string;
  readonly #client: ThingClient;
  readonly #affordance: ActionAffordance;
  readonly #title: string;
  readonly #field: SchemaField | undefined;
  readonly #inputSchema: JsonSchema | undefined;
  readonly #message: HTMLElement;
  readonly #invocations: HTMLElement;
  readonly #views: InvocationView[] = [];

  constructor(client: ThingClient, name: string, affordance: ActionAffordance) {
    this.#client = client;
    this.name = name;
    this.#affordance = affordance;
    this.#title = affordance.title ?? name;
    this.#inputSchema = affordance.input as JsonSchema | undefined;
    if (
      this.#inputSchema &&
      (schemaType(this.#inputSchema) !== "object" || this.#inputSchema.properties)
    ) {
      this.#field = schemaField(this.#inputSchema, {
        label: "Input",
        name: `${name}-input`,
        required: inputRequired(this.#inputSchema),
      });
    }
    this.#message = h("p", { class: "form-message", role: "status" });
    this.#invocations = h("div", { class: "invocations" });
    const form = h(
      "form",
      {
        novalidate: true,
        "aria-label": `Run ${this.#title}`,
        onsubmit: (event) => this.#submit(event),
      },
      this.#field?.element,
      h("div", { class: "action-buttons" }, h("button", { type: "submit" }, this.#title)),
      this.#message,
    );
    // Collapsed to its title until opened: a panel of many actions stays short. Its
    // invocations stay in sight below the title, each one line once finished.
    this.element = h(
      "div",
      { class: "action", "data-action": name },
      h(
        "details",
        { class: "action-form" },
        h("summary", {}, h("strong", {}, this.#title), " ", h("span", { class: "name" }, name)),
        affordance.description ? h("p", { class: "hint" }, affordance.description) : null,
        form,
      ),
      this.#invocations,
    );
  }

  /** Run the action with `input` and show the invocation; resolves once it has been accepted. */
  async run(input: unknown): Promise<InvocationView> {
    const view = new InvocationView({
      client: this.#client,
      title: this.#title,
      output: this.#affordance.output as JsonSchema | undefined,
    });
    this.#invocations.prepend(view.element);
    this.#views.unshift(view);
    for (const old of this.#views.splice(KEPT_INVOCATIONS)) {
      old.dispose();
      old.element.remove();
    }
    try {
      await invoke(this.#client, this.name, input, view);
      this.#say("", "muted");
    } catch (error) {
      view.showError(error);
      throw error;
    }
    return view;
  }

  async #submit(event: Event): Promise<void> {
    event.preventDefault();
    // An object input with nothing filled in is sent as {} (the action's defaults apply).
    const isObject = this.#inputSchema !== undefined && schemaType(this.#inputSchema) === "object";
    let input: unknown = isObject ? {} : undefined;
    if (this.#field && this.#inputSchema) {
      const required = inputRequired(this.#inputSchema);
      const collected = collect(this.#field, this.#inputSchema, required, checkValue);
      this.#field.showProblems(collected.problems);
      if (collected.problems.length > 0) {
        this.#say("Not sent: the input breaks the action's rules.", "problem");
        this.#field.focusFirstProblem();
        return;
      }
      input = collected.value ?? input;
    }
    try {
      await this.run(input);
    } catch (error) {
      if (error instanceof HttpError && error.status === 400 && this.#field) {
        this.#field.showProblems(serverProblems(error.problem));
        this.#field.focusFirstProblem();
      }
      this.#say(`Not started: ${errorText(error)}`, "problem");
    }
  }

  #say(text: string, kind: "ok" | "problem" | "muted"): void {
    this.#message.className = `form-message ${kind}`;
    this.#message.textContent = text;
  }
}

/** An object input is required only when some member is; any other input always is. */
function inputRequired(schema: JsonSchema): boolean {
  return schemaType(schema) !== "object" || (schema.required?.length ?? 0) > 0;
}
