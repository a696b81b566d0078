/**
 * labthings-ts side of `bench/peers.ts`: the Thing of `bench/peers-thing.ts` served by a
 * ThingServer (the built package, `dist/`), with the action twice: `noop`, asynchronous as
 * every action is by default (POST answers 201 with an ActionStatus the client can query
 * and cancel), and `noopSync` (`synchronous: true`: POST answers 204 once it is done, as
 * node-wot's actions do).
 *
 * URLs are ours: `/bench/{property}`, `/bench/{action}`; observing is
 * `GET /bench/setpoint` with `Accept: text/event-stream` (server-sent events).
 *
 * Run with `node --import tsx bench/peers-labthings-server.ts` (the decorators need
 * compiling). Prints `{"url", "pid"}` on stdout when listening; on SIGTERM runs
 * `server.close()` (what `labthings-ts serve` does), prints `{"shutdown": report}` and
 * exits 0 (1 if the shutdown had to force anything).
 */
import { action, property, Thing, ThingServer, Type } from "../dist/src/index.js";
import { BENCH_THING, INITIAL } from "./peers-thing.js";

const { x, y, z } = BENCH_THING.position.properties;
const Position = Type.Object(
  { x: Type.Integer(x), y: Type.Integer(y), z: Type.Integer(z) },
  { additionalProperties: false },
);

class BenchThing extends Thing {
  static override title = BENCH_THING.title;

  @property({ schema: Type.Number(), readOnly: true })
  get count(): number {
    return INITIAL.count;
  }

  @property({
    schema: Type.Number({
      minimum: BENCH_THING.setpoint.minimum,
      maximum: BENCH_THING.setpoint.maximum,
    }),
  })
  accessor setpoint = INITIAL.setpoint;

  @property({ schema: Position, readOnly: true })
  accessor position = { ...INITIAL.position };

  @action()
  async noop(): Promise<void> {}

  @action({ synchronous: true })
  async noopSync(): Promise<void> {}
}

const server = new ThingServer([{ name: "bench", thing: new BenchThing() }], { port: 0 });
const url = await server.start();

// The handler is in place before the ready line: the parent may signal right after reading it.
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

console.log(JSON.stringify({ url, pid: process.pid }));
