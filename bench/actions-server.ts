/**
 * labthings-ts side of `bench/actions.ts`: a ThingServer (the built package, `dist/`) with
 * one Thing `bench` holding the actions and the property the benchmark drives:
 *
 * - `noop`: `@action()`, does nothing (POST answers 201 + ActionStatus);
 * - `noopSync`: `@action({ synchronous: true })`, does nothing (POST answers 204);
 * - `sleep` / `sleepSync`: `ctx.sleep(input.ms)`, asynchronous / synchronous;
 * - `value`: a trivial number property (the GET baseline);
 * - `heapUsed` (read-only property) and `gc` (synchronous action; `global.gc` when the
 *   process runs with `--expose-gc`): for the memory check only.
 *
 * Run with `node --import tsx bench/actions-server.ts` (the decorators need compiling).
 * Prints `{"url", "pid"}` on stdout when listening; on SIGTERM runs `server.close()`,
 * prints `{"shutdown": report}` and exits 0 (1 if the shutdown had to force anything).
 */
import {
  type ActionContext,
  action,
  property,
  Thing,
  ThingServer,
  Type,
} from "../dist/src/index.js";

const SleepInput = Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 60_000 }) });

class BenchThing extends Thing {
  static override title = "Action benchmark";

  @property({ schema: Type.Number() })
  accessor value = 1;

  @property({ schema: Type.Integer(), readOnly: true })
  get heapUsed(): number {
    return process.memoryUsage().heapUsed;
  }

  @action()
  async noop(): Promise<void> {}

  @action({ synchronous: true })
  async noopSync(): Promise<void> {}

  @action({ input: SleepInput })
  async sleep(input: { ms: number }, ctx: ActionContext): Promise<void> {
    await ctx.sleep(input.ms);
  }

  @action({ input: SleepInput, synchronous: true })
  async sleepSync(input: { ms: number }, ctx: ActionContext): Promise<void> {
    await ctx.sleep(input.ms);
  }

  @action({ synchronous: true })
  async gc(): Promise<void> {
    (globalThis as { gc?: () => void }).gc?.();
  }
}

const thing = new BenchThing();
const server = new ThingServer([{ name: "bench", thing }], { port: 0, actionRetentionMs: 2000 });
const url = await server.start();

process.once("SIGTERM", () => {
  void server.close().then(
    (report) => {
      console.log(
        JSON.stringify({
          shutdown: { ...report, responsesDestroyed: report.responsesDestroyed.length },
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
