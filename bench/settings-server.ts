/**
 * labthings-ts side of `bench/settings.ts`: a ThingServer (the built package, `dist/`) on
 * 127.0.0.1, port 0, with `settingsDir` taken from the environment (`BENCH_SETTINGS_DIR`,
 * a fresh folder the bench made under os.tmpdir() and removes), and one Thing `bench`:
 *
 * - `plain`: a `@property` number (the baseline: no persistence);
 * - `level`: a `@setting` number;
 * - `calibration`: a `@setting` object (the settings file is ~200 bytes with it);
 * - `settingsStats` (read-only): `server.settings.stats`, files written and failed writes;
 * - `churn` (synchronous action): assigns a new value to `plain`, `level`, `calibration` or
 *   both settings in turn as fast as it can for `seconds`, yielding with setImmediate every
 *   YIELD_EVERY changes, and answers how many changes it made and files were written.
 *
 * Run with `node --import tsx bench/settings-server.ts` (the decorators need compiling).
 * Prints `{"url", "pid"}` on stdout when listening; on SIGTERM runs `server.close()` (whose
 * shutdown sequence flushes pending settings) and prints `{"closed": …}` with the values
 * the Thing holds then and the files written before and during the close, and exits.
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import {
  action,
  property,
  type Static,
  setting,
  Thing,
  ThingServer,
  Type,
} from "../dist/src/index.js";

/** A loop that never yields would starve the debounce timer and the fsync callbacks. */
const YIELD_EVERY = 256;

const Calibration = Type.Object({
  gain: Type.Number(),
  offset: Type.Number(),
  exposureUs: Type.Integer(),
  colourGains: Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }),
  updated: Type.Integer({ description: "change counter" }),
});
type Calibration = Static<typeof Calibration>;

const Stats = Type.Object({ writes: Type.Integer(), failures: Type.Integer() });

const ChurnInput = Type.Object({
  target: Type.Union([
    Type.Literal("plain"),
    Type.Literal("level"),
    Type.Literal("calibration"),
    Type.Literal("settings"),
  ]),
  seconds: Type.Number({ exclusiveMinimum: 0, maximum: 30 }),
});
const ChurnOutput = Type.Object({
  changes: Type.Integer(),
  elapsedMs: Type.Number(),
  /** Settings files written during the loop. */
  writes: Type.Integer(),
});

const settingsDir = process.env.BENCH_SETTINGS_DIR;
if (!settingsDir) throw new Error("BENCH_SETTINGS_DIR is not set");

/** The loops assign increasing numbers, so every assignment is a real change. */
let counter = 1;

class SettingsBench extends Thing {
  static override title = "Settings benchmark";

  @property({ schema: Type.Number() })
  accessor plain = 0;

  @setting({ schema: Type.Number() })
  accessor level = 0;

  @setting({ schema: Calibration })
  accessor calibration: Calibration = {
    gain: 1.25,
    offset: -0.0125,
    exposureUs: 12_000,
    colourGains: [1.05, 1, 1.41],
    updated: 0,
  };

  /** The bench reads the store's counters over HTTP; a Thing would not know its server. */
  @property({ schema: Stats, readOnly: true })
  get settingsStats(): Static<typeof Stats> {
    return { ...server.settings.stats };
  }

  @action({ input: ChurnInput, output: ChurnOutput, synchronous: true })
  async churn(input: Static<typeof ChurnInput>): Promise<Static<typeof ChurnOutput>> {
    // Start from a quiet store: the previous loop's pending save does not count here.
    await server.settings.flush();
    const writesBefore = server.settings.stats.writes;
    const started = performance.now();
    const deadline = started + input.seconds * 1000;
    let changes = 0;
    for (;;) {
      const value = counter++;
      if (input.target === "plain") this.plain = value;
      else if (input.target === "level") this.level = value;
      else if (input.target === "calibration" || changes % 2 === 1) {
        this.calibration = { ...this.calibration, gain: value / 1000, updated: value };
      } else this.level = value;
      changes++;
      if (changes % YIELD_EVERY === 0) {
        await yieldToLoop();
        if (performance.now() >= deadline) break;
      }
    }
    return {
      changes,
      elapsedMs: performance.now() - started,
      writes: server.settings.stats.writes - writesBefore,
    };
  }
}

const thing = new SettingsBench();
const server = new ThingServer([{ name: "bench", thing }], { port: 0, settingsDir });
const url = await server.start();
// A second SIGTERM while closing is ignored: the bench waits for the printed values.
let closing = false;
process.on("SIGTERM", () => {
  if (closing) return;
  closing = true;
  const writesBeforeClose = server.settings.stats.writes;
  void server.close().then(
    (report) => {
      console.log(
        JSON.stringify({
          closed: {
            forced: report.forced,
            settingsSaved: report.settingsSaved,
            durationMs: report.durationMs,
            writesBeforeClose,
            writesAfterClose: server.settings.stats.writes,
            failures: server.settings.stats.failures,
            values: { level: thing.level, calibration: thing.calibration },
          },
        }),
      );
      process.exit(report.forced ? 1 : 0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});

// Only now: the bench may send SIGTERM the moment it reads this line.
console.log(JSON.stringify({ url, pid: process.pid }));
