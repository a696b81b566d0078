/**
 * labthings-fastapi's example Thing `MyThing`, ported (examples/labthings-fastapi/): first
 * as its own tests/test_example_thing.py exercises it, with no server; then served by the
 * real command line from the example's config file, driven the way that project's
 * quickstart `counter_client.py` drives a Thing, with its Python `ThingClient` (replayed
 * request for request), and watched over its websocket.
 *
 * The CLI runs `dist/`: run `npm run build` before running this file on its own.
 */
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MyThing } from "../examples/labthings-fastapi/my-thing.js";
import type { ActionContext } from "../src/index.js";
import { pollStatus } from "./support/actions-http.js";
import { assertBuilt, type Cli, killAll, listeningUrl, startCli } from "./support/cli-process.js";
import { RecordingWebSocket } from "./support/observation-clients.js";
import {
  FailedToInvokeActionError,
  HttpxClient,
  InvocationCancelledError,
  polledInvocationId,
  raised,
  UpstreamThingClient,
} from "./support/upstream-thing-client.js";
import { within } from "./support/within.js";

const CONFIG = fileURLToPath(new URL("../examples/labthings-fastapi/config.json", import.meta.url));

/** An ActionContext for calling an action as a plain method (a unit test, no server). */
function context(): ActionContext {
  const signal = new AbortController().signal;
  return {
    id: "test",
    signal,
    progress: () => {},
    logger: { error() {}, warn() {}, info() {}, debug() {}, child: () => context().logger },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

describe("MyThing without a server (its test_example_thing.py)", () => {
  it("behaves as upstream's test_mything says", async () => {
    const thing = new MyThing();
    const ctx = context();
    expect(thing.counter).toBe(0);
    expect(
      thing.anaction({ repeats: 3, undocumented: 1, title: "MyTitle", attempts: ["a", "b"] }),
    ).toEqual({ end_result: "finished!!" });
    expect(thing.make_a_dict({ extra_key: "key2", extra_value: "value2" })).toEqual({
      key: "value",
      key2: "value2",
    });
    const before = thing.counter;
    thing.increment_counter();
    expect(thing.counter).toBe(before + 1);
    await thing.slowly_increase_counter({ increments: 3, delay: 0 }, ctx);
    expect(thing.counter).toBe(before + 4);
    expect(thing.foo).toBe("Example");
    thing.foo = "New Value";
    expect(thing.foo).toBe("New Value");
    thing.action_without_arguments();
    thing.action_with_only_kwargs({ foo: "bar" });
  });
});

describe("MyThing served from examples/labthings-fastapi/config.json by the CLI", () => {
  let cli: Cli;
  let base: string;
  let http: HttpxClient;
  let example: UpstreamThingClient;

  beforeAll(async () => {
    assertBuilt();
    cli = startCli(["--config", CONFIG, "--port", "0"]);
    base = await listeningUrl(cli);
    http = new HttpxClient({ baseUrl: base });
    // counter_client.py: `counter = ThingClient.from_url("http://localhost:5000/counter/")`
    example = await UpstreamThingClient.fromUrl(`${base}/example/`, http);
  });

  afterAll(async () => {
    http?.close();
    if (cli && cli.child.exitCode === null) {
      cli.signal("SIGTERM");
      expect((await within(cli.exited, "the CLI to exit")).code).toBe(0);
    }
    await killAll();
  });

  it("counter_client.py: read the counter, increment it, read it again", async () => {
    expect(Object.keys(example.properties)).toEqual(["counter", "foo"]);
    expect(Object.keys(example.actions)).toEqual([
      "anaction",
      "make_a_dict",
      "increment_counter",
      "slowly_increase_counter",
      "action_without_arguments",
      "action_with_only_kwargs",
    ]);
    const v = (await example.get("counter")) as number;
    // An action without output: the client returns None (`output: null`).
    expect(await example.call("increment_counter")).toBeNull();
    expect(await example.get("counter")).toBe(v + 1);
    // counter is read-only: the client refuses before sending anything.
    await expect(example.set("counter", 5)).rejects.toThrow("This property may not be set.");
  });

  it("every action as upstream's test_mything calls it, through the ThingClient", async () => {
    expect(
      await example.call("anaction", {
        repeats: 3,
        undocumented: 1,
        title: "MyTitle",
        attempts: ["a", "b", "c"],
      }),
    ).toEqual({ end_result: "finished!!" });
    expect(await example.call("make_a_dict", { extra_key: "key2", extra_value: "value2" })).toEqual(
      { key: "value", key2: "value2" },
    );
    expect(await example.call("make_a_dict")).toEqual({ key: "value" });
    const before = (await example.get("counter")) as number;
    expect(await example.call("slowly_increase_counter", { increments: 3, delay: 0 })).toBeNull();
    expect(await example.get("counter")).toBe(before + 3);
    expect(await example.get("foo")).toBe("Example");
    await example.set("foo", "New Value");
    expect(await example.get("foo")).toBe("New Value");
    expect(await example.call("action_without_arguments")).toBeNull();
    expect(await example.call("action_with_only_kwargs", { foo: "bar" })).toBeNull();
    // Required arguments missing: refused before anything runs.
    await expect(example.call("anaction", { repeats: 3 })).rejects.toThrow(
      new FailedToInvokeActionError(
        "Error when invoking action anaction: invalid input for action 'example/anaction': / must have required property 'undocumented' (required)",
      ),
    );
  });

  it("the minute-long slowly_increase_counter, cancelled: InvocationCancelledError at once", async () => {
    const start = http.requests.length;
    const call = raised(example.call("slowly_increase_counter"));
    const id = await polledInvocationId(http, start);
    await pollStatus(base, id, (s) => s.status === "running", "the slow action to run");
    const cancelled = performance.now();
    expect((await fetch(`${base}/action_invocations/${id}`, { method: "DELETE" })).status).toBe(
      204,
    );
    expect(await call).toBeInstanceOf(InvocationCancelledError);
    // ctx.sleep ends on cancel (upstream's time.sleep would run out its second).
    expect(performance.now() - cancelled).toBeLessThan(900);
  });

  it("its websocket: a propertyStatus for each increment, a body-less POST included", async () => {
    const socket = await RecordingWebSocket.open(`${base.replace("http", "ws")}/example/ws`);
    socket.send({ messageType: "addPropertyObservation", data: { counter: true, foo: true } });
    socket.send({ messageType: "addActionObservation", data: { nothing: true } });
    await socket.waitFor(() => socket.received.length === 1, "the sync error");
    const start = (await example.get("counter")) as number;
    // upstream's test: `client.post("/thing/increment_dataprop")`, with no body at all.
    const created = await fetch(`${base}/example/increment_counter`, { method: "POST" });
    expect(created.status).toBe(201);
    await example.call("increment_counter", {});
    await example.set("foo", "same");
    await example.set("foo", "same");
    await socket.waitFor(() => socket.received.length === 5, "four propertyStatus messages");
    expect(socket.received.slice(1)).toEqual([
      { messageType: "propertyStatus", data: { counter: start + 1 } },
      { messageType: "propertyStatus", data: { counter: start + 2 } },
      { messageType: "propertyStatus", data: { foo: "same" } },
      { messageType: "propertyStatus", data: { foo: "same" } },
    ]);
  });
});
