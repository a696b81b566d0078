/**
 * node-wot side of `bench/peers.ts`: the Thing of `bench/peers-thing.ts` exposed by
 * Eclipse Thingweb's node-wot (`@node-wot/core` Servient + `@node-wot/binding-http`
 * HttpServer, `produce` / `expose`), written the way its examples are: a read handler per
 * property, a write handler that reads the value through `InteractionOutput.value()`
 * (which validates it against the property's schema) and emits the change to observers,
 * and an action handler.
 *
 * URLs are node-wot's: `/bench/properties/{name}`, `/bench/actions/{name}`, and
 * `/bench/properties/{name}/observable` (a long-poll: the response waits for the next
 * change).
 *
 * Run with `node --import tsx bench/peers-node-wot-server.ts`. Prints `{"url", "pid"}` on
 * stdout when listening and `{"observers": n}` whenever an observer arrives. On SIGTERM it
 * does what node-wot's users do, `servient.shutdown()` (which stops every server), then
 * prints `{"shutdown": {"durationMs"}}` and exits 0; the parent caps the wait.
 */
import HttpBinding from "@node-wot/binding-http";
import { Servient } from "@node-wot/core";
import { BENCH_THING, INITIAL, type Position } from "./peers-thing.js";

const servient = new Servient();
const server = new HttpBinding.HttpServer({ port: 0, address: "127.0.0.1" });
servient.addServer(server);
const WoT = await servient.start();

const thing = await WoT.produce({
  title: BENCH_THING.title,
  properties: {
    count: { ...BENCH_THING.count, readOnly: true, observable: true },
    setpoint: { ...BENCH_THING.setpoint, observable: true },
    position: {
      ...BENCH_THING.position,
      required: [...BENCH_THING.position.required],
      readOnly: true,
      observable: true,
    },
  },
  actions: { noop: {} },
});

let setpoint = INITIAL.setpoint;
const position: Position = { ...INITIAL.position };
let observers = 0;

thing.setPropertyReadHandler("count", async () => INITIAL.count);
thing.setPropertyReadHandler("setpoint", async () => setpoint);
thing.setPropertyReadHandler("position", async () => position);
thing.setPropertyWriteHandler("setpoint", async (value) => {
  // value() parses and validates against the TD's schema (throws → 500, node-wot's answer).
  setpoint = (await value.value()) as number;
  thing.emitPropertyChange("setpoint");
});
thing.setPropertyObserveHandler("setpoint", async () => {
  observers++;
  console.log(JSON.stringify({ observers }));
  return setpoint;
});
thing.setActionHandler("noop", async () => undefined);
await thing.expose();

// The handler is in place before the ready line: the parent may signal right after reading it.
process.once("SIGTERM", () => {
  const started = performance.now();
  void servient.shutdown().then(
    () => {
      console.log(JSON.stringify({ shutdown: { durationMs: performance.now() - started } }));
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});

console.log(JSON.stringify({ url: `http://127.0.0.1:${server.getPort()}`, pid: process.pid }));
