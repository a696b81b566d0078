/**
 * ThingClient against a Thing exposed by node-wot's own HTTP server (@node-wot/core
 * Servient + @node-wot/binding-http HttpServer on 127.0.0.1): software nobody on this
 * project wrote, whose TDs differ from ours. Covered: the operations node-wot's server
 * supports for a Profile client — readproperty, writeproperty, readallproperties and
 * (synchronous) invokeaction.
 *
 * node-wot 0.9's server, as this test meets it:
 * - Without `baseUri` its TD hrefs name every network interface of the machine (not the
 *   address it is bound to), so a client following forms would miss a server bound to
 *   127.0.0.1; the test picks a free port first and passes `baseUri`.
 * - Property forms carry `op: ["readproperty", "writeproperty"]` and no
 *   `htv:methodName`: the client's HTTP Basic Profile defaults (GET, PUT) apply.
 * - Every form is offered twice, as JSON and as CBOR; the client picks the JSON one.
 * - Observation and events use the `longpoll` subprotocol, not SSE: the client says it
 *   has no form it can use rather than guessing.
 * - Actions are synchronous: 200 with the output or 204, never 201 + Location.
 * - Errors are plain-text 500s, never Problem Details, even for an invalid value (which
 *   our server answers 400).
 * - Its readallproperties also tries to read writeOnly properties and then fails with
 *   500, so the Thing here has none.
 */
import { createServer } from "node:net";
import HttpBinding from "@node-wot/binding-http";
import { Servient } from "@node-wot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AffordanceNotFoundError, HttpError, ThingClient } from "../src/client/index.js";
import { within } from "./support/within.js";

/** A free TCP port on 127.0.0.1 (node-wot needs the port before it can write its TD hrefs). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

let servient: Servient;
let tdUrl: string;
const state = { count: 0, label: "initial" };

beforeAll(async () => {
  const port = await freePort();
  servient = new Servient();
  servient.addServer(
    new HttpBinding.HttpServer({ port, address: "127.0.0.1", baseUri: `http://127.0.0.1:${port}` }),
  );
  const wot = await servient.start();
  const thing = await wot.produce({
    title: "Counter",
    properties: {
      count: { type: "integer", observable: true },
      label: { type: "string" },
    },
    actions: {
      increment: {
        input: { type: "object", properties: { by: { type: "integer" } } },
        output: { type: "integer" },
      },
      reset: {},
      explode: {},
    },
    events: { overflow: { data: { type: "integer" } } },
  });
  thing.setPropertyReadHandler("count", async () => state.count);
  thing.setPropertyWriteHandler("count", async (value) => {
    state.count = (await value.value()) as number;
  });
  thing.setPropertyReadHandler("label", async () => state.label);
  thing.setPropertyWriteHandler("label", async (value) => {
    state.label = (await value.value()) as string;
  });
  thing.setActionHandler("increment", async (input) => {
    const { by } = ((await input?.value()) ?? {}) as { by?: number };
    state.count += by ?? 1;
    return state.count;
  });
  thing.setActionHandler("reset", async () => {
    state.count = 0;
    return undefined;
  });
  thing.setActionHandler("explode", async () => {
    throw new Error("the counter exploded");
  });
  await thing.expose();
  tdUrl = `http://127.0.0.1:${port}/counter`;
});

afterAll(async () => {
  await within(servient.shutdown(), "the node-wot servient to shut down");
});

describe("ThingClient against node-wot's HTTP server", () => {
  it("fetches and accepts node-wot's TD", async () => {
    const client = await ThingClient.connect(tdUrl);
    expect(client.title).toBe("Counter");
    expect(Object.keys(client.description.properties)).toEqual(["count", "label"]);
    // The JSON and CBOR forms are both there; the client will use the JSON one.
    const countForms = client.description.properties.count!.forms;
    expect(countForms.map((form) => form.contentType)).toContain("application/cbor");
    expect(countForms.some((form) => form["htv:methodName"] !== undefined)).toBe(false);
  });

  it("reads and writes properties", async () => {
    const client = await ThingClient.connect(tdUrl);
    await client.writeProperty("count", 41);
    expect(await client.readProperty("count")).toBe(41);
    expect(state.count).toBe(41);
    await client.writeProperty("label", "from ThingClient");
    expect(await client.readProperty("label")).toBe("from ThingClient");
  });

  it("reads all properties through its readallproperties form", async () => {
    const client = await ThingClient.connect(tdUrl);
    state.count = 7;
    state.label = "seven";
    expect(await client.readAllProperties()).toEqual({ count: 7, label: "seven" });
  });

  it("invokes its synchronous actions: 200 with the output, and 204", async () => {
    const client = await ThingClient.connect(tdUrl);
    state.count = 10;
    const increment = await client.invokeAction<number>("increment", { by: 5 });
    expect(increment.status).toBe("completed");
    expect(increment.id).toBeUndefined();
    expect(await increment.result()).toBe(15);
    const reset = await client.invokeAction("reset");
    expect(await reset.result()).toBeUndefined();
    expect(state.count).toBe(0);
  });

  it("its errors are HttpErrors without Problem Details", async () => {
    const client = await ThingClient.connect(tdUrl);
    const failed = await client.invokeAction("explode").catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(HttpError);
    expect(failed).toMatchObject({ status: 500, problem: undefined });
    expect((failed as HttpError).message).toContain("the counter exploded");
    // An invalid value: node-wot answers 500 where our server answers 400.
    const invalid = await client.writeProperty("count", "many").catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status: 500, problem: undefined });
    expect(await client.readProperty("count")).toBe(0);
  });

  it("observation and events over long polling are reported, not guessed at", async () => {
    const client = await ThingClient.connect(tdUrl);
    await expect(client.observeProperty("count").next()).rejects.toThrow(AffordanceNotFoundError);
    await expect(client.subscribeEvent("overflow").next()).rejects.toThrow(
      /no form for 'subscribeevent' over server-sent events/,
    );
  });
});
