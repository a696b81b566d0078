/**
 * Settings that are never lost. Each Thing's `@setting` properties live in
 * `<settingsDir>/<thing>.json`, loaded before `start()` and saved on every change
 * (debounced, and flushed at shutdown). Writes are atomic (temporary file, fsync,
 * rename). A file that cannot be read as JSON is moved aside, never overwritten;
 * an invalid value falls back to the default with a warning naming the key; unknown
 * keys are kept and written back (`__proto__` included, as plain data).
 *
 * A save that fails (read-only folder, full disk) is retried with a growing pause, each
 * failure logged with the Thing, the file and the system error, and visible in `status()`
 * until a save succeeds; `unsaved()` names every value not on disk, for the shutdown
 * report. `flushSync()` writes everything pending without returning to the event loop:
 * the last thing a process does when a second Ctrl-C exits it at once.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError, ThingLifecycleError } from "../errors.js";
import type { ThingLogger } from "../model/logger.js";
import { describeFieldErrors, type SchemaValidator } from "../model/schema-validator.js";
import { observeProperties } from "../model/thing.js";
import {
  removeStaleTemporaries,
  writeFileAtomically,
  writeFileAtomicallySync,
} from "./atomic-file.js";
import type { ExposedProperty, ExposedThing } from "./exposed-thing.js";

/** Per Thing, from the config: values used when nothing is saved, and values locked. */
export interface SettingsConfig {
  /** Used when the settings file holds no value for the key. */
  initial?: Record<string, unknown>;
  /** Always this value, read-only over the network. */
  locked?: Record<string, unknown>;
}

/** How one Thing's settings file stands: what `GET /settings/` shows. */
export interface SettingsFileStatus {
  thing: string;
  file: string;
  /** Every value is on disk as it is now. */
  saved: boolean;
  /** A change waits for its write (debounce), a write is under way, or a retry is due. */
  pending: boolean;
  /** Settings whose current value is not the one on disk. */
  unsaved: string[];
  /** The last save failed: the system error (code and message). */
  error?: { code?: string; message: string };
  /** When saves started failing (RFC 3339), while they fail. */
  failingSince?: string;
  /** Failed attempts in a row. */
  failedAttempts?: number;
  /** When the next attempt is due (RFC 3339). */
  nextAttempt?: string;
}

/** A value that is not on disk: what would be lost if the process ended now. */
export interface UnsavedSetting {
  thing: string;
  key: string;
  value: unknown;
  file: string;
  /** Why the last save failed, when it did. */
  error?: string;
}

/** First pause before a failed save is tried again; it doubles up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;
/** After a blocking write that raced an asynchronous one, how long before checking the file. */
const SYNC_RACE_CHECK_MS = 20;

/** A UTF-8 byte-order mark, as Windows editors write at the start of a file. */
const BOM = "\uFEFF";

interface SaveFailure {
  error: NodeJS.ErrnoException;
  since: Date;
  attempts: number;
  nextAttemptAt: number;
}

/** A file's text and, per setting, the JSON of the value it holds. */
interface Snapshot {
  text: string;
  values: Map<string, string>;
}

interface ThingSettings {
  readonly exposed: ExposedThing;
  readonly file: string;
  readonly settings: ReadonlyMap<string, ExposedProperty>;
  /**
   * Keys found in the file that are no setting of this Thing: kept, written back. No
   * prototype, so a key such as `__proto__` is an ordinary entry.
   */
  readonly unknown: Record<string, unknown>;
  /** Per setting, the JSON of the value on disk (what a restart would load). */
  onDisk: Map<string, string>;
  timer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  failure: SaveFailure | undefined;
  /** The write in progress (resolved when none); it writes again while `dirty`. */
  writing: Promise<void>;
  busy: boolean;
  /** Changed since the write in progress read the values. */
  dirty: boolean;
  /** Blocking writes so far (flushSync): an asynchronous write they overtook writes again. */
  syncWrites: number;
  loading: boolean;
}

export class SettingsStore {
  readonly #things = new Map<string, ThingSettings>();
  /** Files written (atomically) and writes that failed, since start: for stats and benchmarks. */
  readonly stats = { writes: 0, failures: 0 };
  readonly #unsubscribe: (() => void)[] = [];
  #disposed = false;

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
      unknown: Object.create(null) as Record<string, unknown>,
      onDisk: new Map(),
      timer: undefined,
      retryTimer: undefined,
      failure: undefined,
      writing: Promise.resolve(),
      busy: false,
      dirty: false,
      syncWrites: 0,
      loading: true,
    };
    this.#things.set(exposed.name, state);
    if (this.folder) await this.#createFolder(exposed.name, this.folder);
    const saved = this.folder ? await this.#read(state) : {};
    for (const [key, property] of settings) {
      const locked = config.locked && key in config.locked;
      const fromConfig = locked ? config.locked?.[key] : config.initial?.[key];
      if (locked || (config.initial && key in config.initial && !Object.hasOwn(saved, key))) {
        this.#check(property, fromConfig, `things.${exposed.name}.settings.${key}`);
        this.#assign(exposed, property, fromConfig);
      } else if (Object.hasOwn(saved, key)) {
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
    // What a restart now would load: the values as they are after loading.
    state.onDisk = this.#snapshot(state).values;
    state.loading = false;
    this.#unsubscribe.push(
      observeProperties(exposed.thing, (name) => {
        if (!state.loading && settings.has(name)) this.#schedule(state);
      }),
    );
  }

  /**
   * Write every pending change now and wait for it (shutdown). A Thing whose saves have
   * been failing is tried once more at once. Never rejects: what could not be written is
   * in `unsaved()` and `status()` afterwards.
   */
  async flush(): Promise<void> {
    for (const state of this.#things.values()) {
      if (state.timer || state.retryTimer || state.failure) {
        clearTimeout(state.timer);
        state.timer = undefined;
        this.#save(state);
      }
    }
    await Promise.all([...this.#things.values()].map((state) => state.writing));
  }

  /**
   * Write every Thing whose values are not all on disk, blocking until each is written
   * (or has failed): for the moment before the process exits with callbacks still due.
   * Returns what is still not on disk.
   */
  flushSync(): UnsavedSetting[] {
    if (!this.folder) return [];
    for (const state of this.#things.values()) {
      const writeUnderWay = state.busy;
      if (!writeUnderWay && !state.timer && this.#unsavedKeys(state).length === 0) continue;
      clearTimeout(state.timer);
      clearTimeout(state.retryTimer);
      state.timer = undefined;
      state.retryTimer = undefined;
      const snapshot = this.#snapshot(state);
      try {
        writeFileAtomicallySync(state.file, snapshot.text);
        // An asynchronous write whose rename was already with the OS may land after ours:
        // look again a moment later and write once more if it did.
        if (writeUnderWay) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SYNC_RACE_CHECK_MS);
          if (readFileSync(state.file, "utf8") !== snapshot.text) {
            writeFileAtomicallySync(state.file, snapshot.text);
          }
        }
        state.onDisk = snapshot.values;
        state.failure = undefined;
        state.syncWrites++;
        this.stats.writes++;
      } catch (error) {
        this.stats.failures++;
        state.failure = {
          error: error as NodeJS.ErrnoException,
          since: state.failure?.since ?? new Date(),
          attempts: (state.failure?.attempts ?? 0) + 1,
          nextAttemptAt: Number.POSITIVE_INFINITY,
        };
      }
    }
    return this.unsaved();
  }

  /** Every value not on disk as it is now, with the file and the last save error. */
  unsaved(): UnsavedSetting[] {
    const unsaved: UnsavedSetting[] = [];
    for (const state of this.#things.values()) {
      for (const key of this.#unsavedKeys(state)) {
        const property = state.settings.get(key)!;
        unsaved.push({
          thing: state.exposed.name,
          key,
          value: this.#value(state, property),
          file: state.file,
          ...(state.failure ? { error: systemError(state.failure.error) } : {}),
        });
      }
    }
    return unsaved;
  }

  /** How every Thing's settings file stands (saved, pending, failing and why). */
  status(): SettingsFileStatus[] {
    return [...this.#things.values()]
      .filter((state) => state.settings.size > 0)
      .map((state) => {
        const unsaved = this.#unsavedKeys(state);
        const failure = state.failure;
        const status: SettingsFileStatus = {
          thing: state.exposed.name,
          file: state.file,
          saved: unsaved.length === 0 && !failure,
          pending: state.timer !== undefined || state.retryTimer !== undefined || state.busy,
          unsaved,
        };
        if (failure) {
          status.error = { code: failure.error.code, message: failure.error.message };
          status.failingSince = failure.since.toISOString();
          status.failedAttempts = failure.attempts;
          if (Number.isFinite(failure.nextAttemptAt)) {
            status.nextAttempt = new Date(failure.nextAttemptAt).toISOString();
          }
        }
        return status;
      });
  }

  dispose(): void {
    this.#disposed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    for (const state of this.#things.values()) {
      clearTimeout(state.timer);
      clearTimeout(state.retryTimer);
    }
  }

  async #createFolder(thing: string, folder: string): Promise<void> {
    try {
      await mkdir(folder, { recursive: true });
    } catch (error) {
      throw new ThingLifecycleError(
        thing,
        "load",
        `cannot create the settings folder ${folder}: ${systemError(error)}`,
      );
    }
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
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return {};
      const what =
        code === "EISDIR"
          ? "it is a folder, not a file (move it away, or choose another settingsDir)"
          : systemError(error);
      throw new ThingLifecycleError(
        state.exposed.name,
        "load",
        `cannot read its settings file ${state.file}: ${what}`,
      );
    }
    // Windows editors start UTF-8 files with a byte-order mark; it is not part of the JSON.
    if (text.startsWith(BOM)) text = text.slice(BOM.length);
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

  #value(state: ThingSettings, property: ExposedProperty): unknown {
    return (state.exposed.thing as unknown as Record<string, unknown>)[property.declaration.member];
  }

  #unsavedKeys(state: ThingSettings): string[] {
    if (!this.folder) return [];
    const now = this.#snapshot(state).values;
    return [...now].filter(([key, json]) => state.onDisk.get(key) !== json).map(([key]) => key);
  }

  #schedule(state: ThingSettings): void {
    if (!this.folder) return;
    // A pending save writes this change too (values are read when it fires). Restarting
    // the timer on every change would never save a setting that keeps changing. While
    // saves fail, the retry timer writes it.
    if (state.timer || state.retryTimer) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.#save(state);
    }, this.debounceMs);
    state.timer.unref();
  }

  /**
   * Write the Thing's settings now. One writer per file; changes made during a write
   * are saved by one more write when it ends (a slow disk never builds a queue). A
   * failure is logged and retried after a pause that doubles each time.
   */
  #save(state: ThingSettings): void {
    clearTimeout(state.retryTimer);
    state.retryTimer = undefined;
    if (state.busy) {
      state.dirty = true;
      return;
    }
    state.busy = true;
    state.writing = (async () => {
      try {
        do {
          state.dirty = false;
          const overtaken = state.syncWrites;
          const snapshot = this.#snapshot(state);
          await writeFileAtomically(state.file, snapshot.text);
          this.stats.writes++;
          // A blocking write of newer values landed first: this one replaced it, so again.
          if (state.syncWrites !== overtaken) state.dirty = true;
          else state.onDisk = snapshot.values;
        } while (state.dirty);
        if (state.failure) {
          this.logger.info(
            { thing: state.exposed.name, file: state.file, failedAttempts: state.failure.attempts },
            `settings of '${state.exposed.name}' saved to ${state.file} after ${state.failure.attempts} failed attempts`,
          );
          state.failure = undefined;
        }
      } catch (error) {
        this.stats.failures++;
        this.#failed(state, error as NodeJS.ErrnoException);
      } finally {
        state.busy = false;
      }
    })();
  }

  #failed(state: ThingSettings, error: NodeJS.ErrnoException): void {
    const attempts = (state.failure?.attempts ?? 0) + 1;
    const pauseMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempts - 1));
    state.failure = {
      error,
      since: state.failure?.since ?? new Date(),
      attempts,
      nextAttemptAt: this.#disposed ? Number.POSITIVE_INFINITY : Date.now() + pauseMs,
    };
    const unsaved = this.#unsavedKeys(state);
    this.logger.error(
      {
        thing: state.exposed.name,
        file: state.file,
        err: error,
        code: error.code,
        attempt: attempts,
        unsaved,
        ...(this.#disposed ? {} : { retryInMs: pauseMs }),
      },
      `could not save settings of '${state.exposed.name}' (${unsaved.join(", ") || "no change"}) to ${state.file}: ${systemError(error)}${this.#disposed ? "" : `; trying again in ${pauseMs} ms`}`,
    );
    if (this.#disposed) return;
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined;
      this.#save(state);
    }, pauseMs);
    state.retryTimer.unref();
  }

  /** The file's text with the values read now (pretty JSON of the settings and unknown keys). */
  #snapshot(state: ThingSettings): Snapshot {
    const data: Record<string, unknown> = Object.create(null);
    Object.assign(data, state.unknown);
    const values = new Map<string, string>();
    for (const [key, property] of state.settings) {
      const value = this.#value(state, property);
      data[key] = value;
      values.set(key, JSON.stringify(value) ?? "undefined");
    }
    return { text: `${JSON.stringify(data, null, 2)}\n`, values };
  }
}

/** `EROFS: read-only file system, open '…'`: the code and Node's message. */
function systemError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
