/**
 * Form fields generated from a JSON Schema: numbers and integers (with their limits as a
 * hint), strings, booleans, enums as a select, nested objects as fieldsets, anything
 * else as JSON text. Every control has a label, a hint and an error line tied to it with
 * `aria-describedby`, so screen readers read the limits and the message.
 */
import { h, isPlainObject, uid } from "./dom.js";
import { type JsonSchema, pointer, type SchemaProblem, schemaType } from "./schema-check.js";

export interface SchemaField {
  readonly element: HTMLElement;
  /** What was entered (`undefined`: nothing, for an optional field) and what could not be parsed. */
  read(): { value: unknown; problems: SchemaProblem[] };
  /** Show a value in the controls. */
  write(value: unknown): void;
  /** Show messages for paths relative to this field ("" is the field itself); clears old ones. */
  showProblems(problems: SchemaProblem[]): void;
  /** Move the keyboard focus to the first field with a message; false when none has one. */
  focusFirstProblem(): boolean;
  /** Edited by the person since the last `write` or `markClean`. */
  readonly dirty: boolean;
  markClean(): void;
}

export interface FieldOptions {
  /** Visible label. */
  label: string;
  /** Used in element ids. */
  name: string;
  /** Whether a value must be given (an empty optional field reads as `undefined`). */
  required: boolean;
}

/**
 * The field for `schema`.
 *
 * @example
 * ```ts
 * const field = schemaField({ type: "integer", minimum: 10 }, { label: "Range", name: "range", required: false });
 * form.append(field.element);
 * field.read(); // { value: undefined, problems: [] } while empty
 * ```
 */
export function schemaField(schema: JsonSchema, options: FieldOptions): SchemaField {
  if (schemaType(schema) === "object" && schema.properties) return new ObjectField(schema, options);
  return new ControlField(schema, options);
}

/** "10 – 1000000 µs · whole number · multiple of 2": the limits a person must respect. */
export function limitsText(schema: JsonSchema): string {
  const parts: string[] = [];
  const low =
    typeof schema.exclusiveMinimum === "number" ? `> ${schema.exclusiveMinimum}` : undefined;
  const high =
    typeof schema.exclusiveMaximum === "number" ? `< ${schema.exclusiveMaximum}` : undefined;
  if (schema.minimum !== undefined && schema.maximum !== undefined)
    parts.push(`${schema.minimum} – ${schema.maximum}`);
  else if (schema.minimum !== undefined) parts.push(`≥ ${schema.minimum}`);
  else if (schema.maximum !== undefined) parts.push(`≤ ${schema.maximum}`);
  if (low) parts.push(low);
  if (high) parts.push(high);
  if (parts.length > 0 && schema.unit) parts[parts.length - 1] += ` ${schema.unit}`;
  else if (schema.unit) parts.push(schema.unit);
  if (schemaType(schema) === "integer") parts.push("whole number");
  if (schema.multipleOf !== undefined) parts.push(`multiple of ${schema.multipleOf}`);
  if (schema.minLength !== undefined && schema.minLength > 0)
    parts.push(`at least ${schema.minLength} characters`);
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
  if (schema.pattern !== undefined) parts.push(`pattern ${schema.pattern}`);
  return parts.join(" · ");
}

type ControlKind = "number" | "text" | "checkbox" | "select" | "json";

/** One control: an input, a select or a JSON text area. */
class ControlField implements SchemaField {
  readonly element: HTMLElement;
  readonly #required: boolean;
  readonly #kind: ControlKind;
  readonly #control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  readonly #error: HTMLElement;
  #dirty = false;

  constructor(schema: JsonSchema, options: FieldOptions) {
    this.#required = options.required;
    const id = uid("field", options.name);
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const type = schemaType(schema);
    const describedBy = `${hintId} ${errorId}`;
    const common = { id, name: options.name, "aria-describedby": describedBy };

    if (schema.enum) {
      this.#kind = "select";
      this.#control = h("select", common);
      if (!options.required) this.#control.append(h("option", { value: "" }, "(not set)"));
      for (const allowed of schema.enum) {
        this.#control.append(h("option", { value: JSON.stringify(allowed) }, String(allowed)));
      }
    } else if (type === "boolean" && options.required) {
      this.#kind = "checkbox";
      this.#control = h("input", { ...common, type: "checkbox" });
    } else if (type === "boolean") {
      this.#kind = "select";
      this.#control = h(
        "select",
        common,
        h("option", { value: "" }, "(not set)"),
        h("option", { value: "true" }, "true"),
        h("option", { value: "false" }, "false"),
      );
    } else if (type === "number" || type === "integer") {
      this.#kind = "number";
      this.#control = h("input", {
        ...common,
        type: "number",
        inputmode: type === "integer" ? "numeric" : "decimal",
        step: schema.multipleOf ?? (type === "integer" ? 1 : "any"),
        min: schema.minimum,
        max: schema.maximum,
      });
    } else if (type === "string") {
      this.#kind = "text";
      this.#control = h("input", { ...common, type: "text", spellcheck: "false" });
    } else {
      this.#kind = "json";
      this.#control = h("textarea", { ...common, rows: 3, spellcheck: "false" });
    }
    if (options.required) this.#control.setAttribute("aria-required", "true");
    this.#control.addEventListener("input", () => {
      this.#dirty = true;
    });
    this.#control.addEventListener("change", () => {
      this.#dirty = true;
    });

    const hint = [schema.description, limitsText(schema), this.#kind === "json" ? "JSON" : ""]
      .filter(Boolean)
      .join(" · ");
    this.#error = h("p", { id: errorId, class: "field-error", "aria-live": "polite" });
    const label = h(
      "label",
      { for: id },
      options.label,
      options.required && this.#kind !== "checkbox"
        ? h("span", { class: "required", "aria-hidden": "true" }, " *")
        : null,
    );
    this.element = h(
      "div",
      { class: `field field-${this.#kind}` },
      this.#kind === "checkbox" ? h("div", { class: "checkbox-row" }, this.#control, label) : label,
      this.#kind === "checkbox" ? null : this.#control,
      h("p", { id: hintId, class: "hint" }, hint),
      this.#error,
    );
    if (schema.default !== undefined) this.write(schema.default);
    this.#dirty = false;
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  markClean(): void {
    this.#dirty = false;
  }

  read(): { value: unknown; problems: SchemaProblem[] } {
    const control = this.#control;
    const none = { value: undefined, problems: [] };
    switch (this.#kind) {
      case "checkbox":
        return { value: (control as HTMLInputElement).checked, problems: [] };
      case "select":
        return control.value === "" ? none : { value: JSON.parse(control.value), problems: [] };
      case "number": {
        const input = control as HTMLInputElement;
        if (input.validity.badInput)
          return { value: undefined, problems: [{ path: "", message: "must be a number" }] };
        if (input.value.trim() === "") return none;
        return { value: Number(input.value), problems: [] };
      }
      case "text":
        // An empty optional text field means "not given"; a required one sends "".
        return control.value === "" && !this.#required
          ? none
          : { value: control.value, problems: [] };
      case "json": {
        if (control.value.trim() === "") return none;
        try {
          return { value: JSON.parse(control.value), problems: [] };
        } catch {
          return { value: undefined, problems: [{ path: "", message: "is not valid JSON" }] };
        }
      }
    }
  }

  write(value: unknown): void {
    const control = this.#control;
    switch (this.#kind) {
      case "checkbox":
        (control as HTMLInputElement).checked = value === true;
        break;
      case "select":
        control.value = value === undefined ? "" : JSON.stringify(value);
        break;
      case "number":
      case "text":
        control.value = value === undefined || value === null ? "" : String(value);
        break;
      case "json":
        control.value = value === undefined ? "" : JSON.stringify(value);
        break;
    }
    this.#dirty = false;
  }

  showProblems(problems: SchemaProblem[]): void {
    const messages = problems.map((p) =>
      p.path === "" ? p.message : `${p.path.slice(1)} ${p.message}`,
    );
    this.#error.textContent = messages.join("; ");
    if (messages.length > 0) this.#control.setAttribute("aria-invalid", "true");
    else this.#control.removeAttribute("aria-invalid");
  }

  focusFirstProblem(): boolean {
    if (!this.#control.hasAttribute("aria-invalid")) return false;
    this.#control.focus();
    return true;
  }
}

/** A fieldset of the object's properties; unset optional members are left out. */
class ObjectField implements SchemaField {
  readonly element: HTMLElement;
  readonly #fields = new Map<string, SchemaField>();
  readonly #required: boolean;
  readonly #error: HTMLElement;

  constructor(schema: JsonSchema, options: FieldOptions) {
    this.#required = options.required;
    const required = new Set(schema.required ?? []);
    this.#error = h("p", { class: "field-error", "aria-live": "polite" });
    const fieldset = h(
      "fieldset",
      { class: "field-object" },
      h("legend", {}, options.label),
      schema.description ? h("p", { class: "hint" }, schema.description) : null,
    );
    for (const [name, member] of Object.entries(schema.properties ?? {})) {
      if (member.readOnly) continue;
      const field = schemaField(member, {
        label: member.title ?? name,
        name: `${options.name}-${name}`,
        required: required.has(name),
      });
      this.#fields.set(name, field);
      fieldset.append(field.element);
    }
    fieldset.append(this.#error);
    this.element = fieldset;
  }

  get dirty(): boolean {
    return [...this.#fields.values()].some((field) => field.dirty);
  }

  markClean(): void {
    for (const field of this.#fields.values()) field.markClean();
  }

  read(): { value: unknown; problems: SchemaProblem[] } {
    const value: Record<string, unknown> = {};
    const problems: SchemaProblem[] = [];
    for (const [name, field] of this.#fields) {
      const read = field.read();
      for (const problem of read.problems)
        problems.push({ ...problem, path: `/${pointer(name)}${problem.path}` });
      if (read.value !== undefined) value[name] = read.value;
    }
    // An optional object left entirely empty is not sent at all.
    if (Object.keys(value).length === 0 && !this.#required && problems.length === 0)
      return { value: undefined, problems };
    return { value, problems };
  }

  write(value: unknown): void {
    const record = isPlainObject(value) ? value : {};
    for (const [name, field] of this.#fields) field.write(record[name]);
  }

  showProblems(problems: SchemaProblem[]): void {
    const own: string[] = [];
    const byField = new Map<string, SchemaProblem[]>();
    for (const problem of problems) {
      const [, first, ...rest] = problem.path.split("/");
      const name = first?.replace(/~1/g, "/").replace(/~0/g, "~");
      if (name !== undefined && this.#fields.has(name)) {
        const list = byField.get(name) ?? [];
        list.push({ path: rest.length > 0 ? `/${rest.join("/")}` : "", message: problem.message });
        byField.set(name, list);
      } else {
        own.push(
          problem.path === "" ? problem.message : `${problem.path.slice(1)} ${problem.message}`,
        );
      }
    }
    for (const [name, field] of this.#fields) field.showProblems(byField.get(name) ?? []);
    this.#error.textContent = own.join("; ");
  }

  focusFirstProblem(): boolean {
    return [...this.#fields.values()].some((field) => field.focusFirstProblem());
  }
}

/**
 * Read a field and check it against its schema: what to send, or the problems to show.
 * `required`: whether an empty field is itself a problem.
 */
export function collect(
  field: SchemaField,
  schema: JsonSchema,
  required: boolean,
  check: (value: unknown, schema: JsonSchema) => SchemaProblem[],
): { value: unknown; problems: SchemaProblem[] } {
  const { value, problems } = field.read();
  if (problems.length > 0) return { value, problems };
  if (value === undefined) {
    return { value, problems: required ? [{ path: "", message: "is required" }] : [] };
  }
  return { value, problems: check(value, schema) };
}

/**
 * The server's 400 `errors` as problems relative to the value sent. A property's fields
 * are rooted at its name (`/resolution/width`, as in a write of several properties);
 * give `property` to strip it. An action's fields are already relative to its input.
 */
export function serverProblems(problem: unknown, property?: string): SchemaProblem[] {
  if (!isPlainObject(problem) || !Array.isArray(problem.errors)) return [];
  const root = property === undefined ? "/" : `/${pointer(property)}`;
  return problem.errors.flatMap((error: unknown) => {
    if (!isPlainObject(error) || typeof error.message !== "string") return [];
    const field = typeof error.field === "string" ? error.field : "";
    const path =
      field === root ? "" : field.startsWith(`${root}/`) ? field.slice(root.length) : field;
    return [{ path, message: error.message }];
  });
}
