/**
 * Settings that are never lost. Each Thing's `@setting` properties live in
 * `<settingsDir>/<thing>.json`, loaded before `start()` and saved on every change
 * (debounced, and flushed at shutdown). Writes are atomic (temporary file, fsync,
 * rename). A file that cannot be read as JSON is moved aside, never overwritten;
 * an invalid value falls back to the default with a warning naming the key; unknown
 * keys are kept and written back.
 */
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../errors.js";
import type { ThingLogger } from "../model/logger.js";
import { describeFieldErrors, type SchemaValidator } from "../model/schema-validator.js";
import { observeProperties } from "../model/thing.js";
import { removeStaleTemporaries, writeFileAtomically } from "./atomic-file.js";
import type { ExposedProperty, ExposedThing } from "./exposed-thing.js";

/** Per Thing, from the config: values used when nothing is saved, and values locked. */
export interface SettingsConfig {
  /** Used when the settings file holds no value for the key. */
  initial?: Record<string, unknown>;
  /** Always this value, read-only over the network. */
  locked?: Record<string, unknown>;
}

interface ThingSettings {
  readonly exposed: ExposedThing;
  readonly file: string;
  readonly settings: ReadonlyMap<string, ExposedProperty>;
  /** Keys found in the file that are no setting of this Thing: kept, written back. */
  unknown: Record<string, unknown>;
  timer: NodeJS.Timeout | undefined;
  /** The write in progress (resolved when none); it writes again while `dirty`. */
  writing: Promise<void>;
  busy: boolean;
  /** Changed since the write in progress read the values. */
  dirty: boolean;
  loading: boolean;
}

export class SettingsStore {
  readonly #things = new Map<string, ThingSettings>();
  /** Files written (atomically) and writes that failed, since start: for stats and benchmarks. */
  readonly stats = { writes: 0, failures: 0 };
  readonly #unsubscribe: (() => void)[] = [];

  /**
   * @param folder where the files go; `undefined` keeps settings in memory only
   *   (nothing is read or written).
   */
  constructor(
    readonly folder: string | undefined,
    private readonly validator: SchemaValidator,
    private readonly logger: ThingLogger,
    private readonly debounceMs = 100,
  ) {}

  /** Load one Thing's settings (before its `start()`), then save on every change. */
  async load(exposed: ExposedThing, config: SettingsConfig = {}): Promise<void> {
    const settings = new Map([...exposed.properties].filter(([, p]) => p.declaration.setting));
    for (const key of [...Object.keys(config.initial ?? {}), ...Object.keys(config.locked ?? {})]) {
      if (!settings.has(key)) {
        throw new ConfigError(
          `things.${exposed.name}.settings.${key}`,
          `'${exposed.name}' has no setting '${key}'`,
        );
      }
    }
    const state: ThingSettings = {
      exposed,
      file: join(this.folder ?? "", `${exposed.name}.json`),
      settings,
      unknown: {},
      timer: undefined,
      writing: Promise.resolve(),
      busy: false,
      dirty: false,
      loading: true,
    };
    this.#things.set(exposed.name, state);
    if (this.folder) await mkdir(this.folder, { recursive: true });
    const saved = this.folder ? await this.#read(state) : {};
    for (const [key, property] of settings) {
      const locked = config.locked && key in config.locked;
      const fromConfig = locked ? config.locked?.[key] : config.initial?.[key];
      if (locked || (config.initial && key in config.initial && !(key in saved))) {
        this.#check(property, fromConfig, `things.${exposed.name}.settings.${key}`);
        this.#assign(exposed, property, fromConfig);
      } else if (key in saved) {
        const errors = this.validator.check(property.declaration.schema, saved[key], key);
        if (errors.length === 0) this.#assign(exposed, property, saved[key]);
        else {
          this.logger.warn(
            { thing: exposed.name, key, file: state.file },
            `saved setting '${exposed.name}.${key}' is invalid (${describeFieldErrors(errors)}): using the default`,
          );
        }
      }
      if (locked) exposed.lockProperty(key);
    }
    for (const [key, value] of Object.entries(saved)) {
      if (settings.has(key)) continue;
      state.unknown[key] = value;
      this.logger.warn(
        { thing: exposed.name, key, file: state.file },
        `settings file has a key '${key}' that '${exposed.name}' does not declare: kept as it is`,
      );
    }
    state.loading = false;
    this.#unsubscribe.push(
      observeProperties(exposed.thing, (name) => {
        if (!state.loading && settings.has(name)) this.#schedule(state);
      }),
    );
  }

  /** Write every pending change now and wait for it (shutdown). */
  async flush(): Promise<void> {
    for (const state of this.#things.values()) {
      if (state.timer) {
        clearTimeout(state.timer);
        state.timer = undefined;
        this.#save(state);
      }
    }
    await Promise.all([...this.#things.values()].map((state) => state.writing));
  }

  dispose(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    for (const state of this.#things.values()) clearTimeout(state.timer);
  }

  async #read(state: ThingSettings): Promise<Record<string, unknown>> {
    const stale = await removeStaleTemporaries(state.file);
    if (stale.length > 0) {
      this.logger.info(
        { thing: state.exposed.name, files: stale },
        "removed temporary files of an interrupted save (the settings file itself is whole)",
      );
    }
    let text: string;
    try {
      text = await readFile(state.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        return parsed as Record<string, unknown>;
      }
    } catch {}
    // Never overwrite what the user saved: move it aside, loudly, and start from defaults.
    const aside = `${state.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    await rename(state.file, aside);
    this.logger.error(
      { thing: state.exposed.name, file: state.file, movedTo: aside },
      `settings file ${state.file} is not a JSON object: moved to ${aside}; '${state.exposed.name}' starts from its defaults`,
    );
    return {};
  }

  #check(property: ExposedProperty, value: unknown, key: string): void {
    const errors = this.validator.check(property.declaration.schema, value, property.name);
    if (errors.length > 0) throw new ConfigError(key, describeFieldErrors(errors));
  }

  #assign(exposed: ExposedThing, property: ExposedProperty, value: unknown): void {
    (exposed.thing as unknown as Record<string, unknown>)[property.declaration.member] = value;
  }

  #schedule(state: ThingSettings): void {
    if (!this.folder) return;
    // A pending save writes this change too (values are read when it fires). Restarting
    // the timer on every change would never save a setting that keeps changing.
    if (state.timer) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.#save(state);
    }, this.debounceMs);
    state.timer.unref();
  }

  /**
   * Write the Thing's settings now. One writer per file; changes made during a write
   * are saved by one more write when it ends (a slow disk never builds a queue).
   */
  #save(state: ThingSettings): void {
    if (state.busy) {
      state.dirty = true;
      return;
    }
    state.busy = true;
    state.writing = (async () => {
      try {
        do {
          state.dirty = false;
          await writeFileAtomically(state.file, this.#serialize(state));
          this.stats.writes++;
        } while (state.dirty);
      } catch (error) {
        this.stats.failures++;
        this.logger.error(
          { err: error, file: state.file },
          `could not save settings of '${state.exposed.name}'`,
        );
      } finally {
        state.busy = false;
      }
    })();
  }

  /** The file's text, with the values read now: pretty JSON of the settings and unknown keys. */
  #serialize(state: ThingSettings): string {
    const values: Record<string, unknown> = { ...state.unknown };
    for (const [key, property] of state.settings) {
      values[key] = (state.exposed.thing as unknown as Record<string, unknown>)[
        property.declaration.member
      ];
    }
    return `${JSON.stringify(values, null, 2)}\n`;
  }
}
