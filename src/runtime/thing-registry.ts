import { NotFoundError, ThingDefinitionError, ThingLifecycleError } from "../errors.js";
import { brief } from "../logging/logger.js";
import type { ThingClass } from "../model/declarations.js";
import { AFFORDANCE_NAME, RESERVED_NAMES, slotsOf } from "../model/declarations.js";
import type { ThingLogger } from "../model/logger.js";
import { SchemaValidator } from "../model/schema-validator.js";
import type { Thing } from "../model/thing.js";
import { attachHost } from "../model/thing.js";
import { ExposedThing } from "./exposed-thing.js";
import { LockManager } from "./lock-manager.js";
import type { SettingsConfig } from "./settings-store.js";
import { errorMessage, settleWithin } from "./settle.js";

/** One Thing to serve: its name (URL segment), the instance, and explicit slot targets. */
export interface ThingEntry {
  name: string;
  thing: Thing;
  /** slot name → name of the Thing to put in it, overriding the search by class. */
  slots?: Record<string, string>;
  /** Initial and locked values of its `@setting`s, from the config. */
  settings?: SettingsConfig;
  /** Its TD's `id`; without one an id is made and kept in the settings folder. */
  id?: string;
}

/** Route names at the server root that a Thing name would shadow. */
const RESERVED_THING_NAMES = new Set([
  "things",
  "thing_descriptions",
  "action_invocations",
  "blobs",
  "docs",
  "openapi.json",
  "_dashboard",
  "access",
  "settings",
  "_fleet",
]);

export interface StopReport {
  /** Things whose `stop()` did not settle within the time allowed. */
  hung: string[];
  /** Things whose `stop()` threw. */
  failed: string[];
}

/**
 * The set of Things a server runs: names them, connects their slots, starts them in
 * dependency order (a Thing starts after the Things in its slots) and stops them in
 * reverse.
 */
export class ThingRegistry {
  readonly #things = new Map<string, ExposedThing>();
  /** Named locks shared by actions and property writes of every Thing. */
  readonly locks = new LockManager();
  readonly #slotTargets = new Map<string, Record<string, string>>();
  readonly #dependencies = new Map<string, Set<string>>();
  #started: string[] = [];
  /** Things whose start() failed (or whose slots hold one): name → reason. */
  readonly #failed = new Map<string, string>();

  constructor(
    entries: readonly ThingEntry[],
    private readonly logger: ThingLogger,
    readonly validator: SchemaValidator = new SchemaValidator(),
  ) {
    for (const { name, thing, slots } of entries) {
      if (
        !AFFORDANCE_NAME.test(name) ||
        RESERVED_NAMES.has(name) ||
        RESERVED_THING_NAMES.has(name)
      ) {
        throw new ThingDefinitionError(
          `'${name}' cannot name a Thing: use letters, digits, '_' or '-', and none of ${[...RESERVED_THING_NAMES].join(", ")}`,
        );
      }
      if (this.#things.has(name)) throw new ThingDefinitionError(`two Things are named '${name}'`);
      const thingLogger = logger.child({ thing: name });
      attachHost(thing, {
        name,
        logger: thingLogger,
        readAllThings: () => this.readAllThings(),
        validator: this.validator,
      });
      this.#things.set(
        name,
        new ExposedThing(name, thing, this.validator, thingLogger, this.locks),
      );
      this.#slotTargets.set(name, slots ?? {});
    }
    this.#connectSlots();
  }

  /** Every readable property of every Thing; a getter that throws is reported, not fatal. */
  readAllThings(): Record<string, Record<string, unknown>> {
    const state: Record<string, Record<string, unknown>> = {};
    for (const exposed of this.values()) {
      const name = exposed.name;
      try {
        state[name] = exposed.readAllProperties();
      } catch (error) {
        state[name] = { error: errorMessage(error) };
      }
    }
    return state;
  }

  /** The Things that are running (all of them, unless some failed to start). */
  get names(): string[] {
    return [...this.#things.keys()].filter((name) => !this.#failed.has(name));
  }

  /** Things that failed to start and are not served, with the reason. */
  get failed(): ReadonlyMap<string, string> {
    return this.#failed;
  }

  *values(): IterableIterator<ExposedThing> {
    for (const [name, exposed] of this.#things) if (!this.#failed.has(name)) yield exposed;
  }

  get(name: string): ExposedThing {
    const exposed = this.#failed.has(name) ? undefined : this.#things.get(name);
    if (!exposed) throw new NotFoundError(`no Thing named '${name}'`);
    return exposed;
  }

  has(name: string): boolean {
    return this.#things.has(name) && !this.#failed.has(name);
  }

  /** Fill every `@thingSlot` from the config's explicit names or by a unique class match. */
  #connectSlots(): void {
    for (const [name, exposed] of this.#things) {
      const explicit = this.#slotTargets.get(name) ?? {};
      const declared = slotsOf(exposed.thing.constructor as ThingClass);
      const dependencies = new Set<string>();
      for (const slotName of Object.keys(explicit)) {
        if (!declared.has(slotName)) {
          throw new ThingLifecycleError(
            name,
            "connect",
            `it has no slot '${slotName}' (slots: ${[...declared.keys()].join(", ") || "none"})`,
          );
        }
      }
      for (const slot of declared.values()) {
        const targetName =
          explicit[slot.name] ?? this.#findByClass(name, slot.name, slot.target, slot.optional);
        if (targetName === undefined) continue;
        const target = this.#things.get(targetName);
        if (!target) {
          throw new ThingLifecycleError(
            name,
            "connect",
            `slot '${slot.name}' names '${targetName}', which is not a Thing of this server`,
          );
        }
        if (!(target.thing instanceof slot.target)) {
          throw new ThingLifecycleError(
            name,
            "connect",
            `slot '${slot.name}' needs a ${slot.target.name} but '${targetName}' is a ${target.thing.constructor.name}`,
          );
        }
        if (targetName === name)
          throw new ThingLifecycleError(
            name,
            "connect",
            `slot '${slot.name}' cannot hold the Thing itself`,
          );
        (exposed.thing as unknown as Record<string, unknown>)[slot.member] = target.thing;
        dependencies.add(targetName);
      }
      this.#dependencies.set(name, dependencies);
    }
  }

  #findByClass(
    owner: string,
    slotName: string,
    target: ThingClass,
    optional: boolean,
  ): string | undefined {
    const matches = [...this.#things]
      .filter(([name, e]) => name !== owner && e.thing instanceof target)
      .map(([name]) => name);
    if (matches.length === 1) return matches[0];
    if (matches.length === 0) {
      if (optional) return undefined;
      throw new ThingLifecycleError(
        owner,
        "connect",
        `slot '${slotName}' needs a ${target.name}, and this server has none`,
      );
    }
    throw new ThingLifecycleError(
      owner,
      "connect",
      `slot '${slotName}' needs one ${target.name}, and several match (${matches.join(", ")}): name one in the config under things.${owner}.slots.${slotName}`,
    );
  }

  /** Names in an order where every Thing comes after the Things in its slots. */
  startOrder(): string[] {
    const order: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (name: string, path: string[]) => {
      if (state.get(name) === "done") return;
      if (state.get(name) === "visiting") {
        throw new ThingLifecycleError(
          name,
          "connect",
          `slots form a cycle: ${[...path, name].join(" → ")}`,
        );
      }
      state.set(name, "visiting");
      for (const dependency of this.#dependencies.get(name) ?? [])
        visit(dependency, [...path, name]);
      state.set(name, "done");
      order.push(name);
    };
    for (const name of this.#things.keys()) visit(name, []);
    return order;
  }

  /**
   * Start every Thing in dependency order. If one fails: by default those started are
   * stopped again and the error thrown; with `continueOnFailure` the failed Thing (and
   * every Thing whose slots hold it) is set aside, reported in `failed`, and the rest run.
   */
  async startAll(
    stopTimeoutMs = 5000,
    { continueOnFailure = false }: { continueOnFailure?: boolean } = {},
  ): Promise<void> {
    for (const name of this.startOrder()) {
      const exposed = this.get(name);
      const brokenSlot = [...(this.#dependencies.get(name) ?? [])].find((d) => this.#failed.has(d));
      if (brokenSlot !== undefined) {
        this.#setAside(name, `it needs '${brokenSlot}', which failed to start`);
        continue;
      }
      try {
        await exposed.thing.start();
      } catch (error) {
        if (continueOnFailure) {
          this.#setAside(name, errorMessage(error), error);
          continue;
        }
        await this.stopAll(stopTimeoutMs);
        throw new ThingLifecycleError(name, "start", errorMessage(error), { cause: error });
      }
      this.#started.push(name);
      this.logger.debug({ thing: name }, "thing started");
    }
  }

  #setAside(name: string, reason: string, error?: unknown): void {
    this.#failed.set(name, reason);
    // The reason is in the line; its stack is for --log-level debug (and JSON output).
    this.logger.error(
      brief({ thing: name, err: error }),
      `Thing '${name}' failed to start: ${reason}; it is not served, the other Things are`,
    );
  }

  /**
   * Stop the started Things in reverse order, each bounded by `timeoutMs`. A Thing that
   * throws or hangs is logged by name and never blocks the rest.
   */
  async stopAll(timeoutMs: number): Promise<StopReport> {
    const report: StopReport = { hung: [], failed: [] };
    const toStop = this.#started.reverse();
    this.#started = [];
    for (const name of toStop) {
      const thing = this.get(name).thing;
      // then(): a stop() that throws synchronously is handled like one that rejects.
      const outcome = await settleWithin(
        Promise.resolve().then(() => thing.stop()),
        timeoutMs,
      );
      if (outcome.kind === "timeout") {
        report.hung.push(name);
        this.logger.error(
          { thing: name, timeoutMs: Math.round(timeoutMs) },
          `Thing '${name}' did not stop within ${Math.round(timeoutMs)} ms`,
        );
      } else if (outcome.kind === "rejected") {
        report.failed.push(name);
        this.logger.error({ thing: name, err: outcome.error }, `Thing '${name}' failed to stop`);
      }
    }
    return report;
  }
}
