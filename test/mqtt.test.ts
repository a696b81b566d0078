/**
 * The MQTT binding against a real Mosquitto broker (started once for the file on
 * 127.0.0.1 with its own config): what `mosquitto_sub` and an MQTT.js client see, what a
 * consumer that knows only the TD sees (node-wot's MQTT binding, reading the TD itself from
 * the broker), commands from MQTT, and a broker that goes away and comes back.
 */
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import mqttBinding from "@node-wot/binding-mqtt";
import { Servient } from "@node-wot/core";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ActionContext,
  action,
  event,
  property,
  Thing,
  type ThingEntry,
  ThingEvent,
  ThingServer,
  Type,
} from "../src/index.js";
import { killAll } from "./support/cli-process.js";
import { LogCapture } from "./support/log-capture.js";
import { Mosquitto, mosquittoSub } from "./support/mosquitto.js";
import { removeTempDirs } from "./support/temp-dir.js";
import { until, within } from "./support/within.js";

const run = promisify(execFile);
const PREFIX = "lab/bench-1";

class Bench extends Thing {
  static override title = "MQTT bench";

  @property({ schema: Type.Integer({ minimum: 0, maximum: 1000 }) })
  accessor level = 0;

  @property({ schema: Type.String(), readOnly: true })
  accessor state = "idle";

  @event({ data: Type.Object({ n: Type.Integer() }) })
  readonly tick = new ThingEvent<{ n: number }>();

  /** Emit `count` ticks. */
  @action({
    input: Type.Object({ count: Type.Integer({ minimum: 0, maximum: 5000 }) }),
    output: Type.Integer(),
  })
  async pulse({ count }: { count: number }, ctx: ActionContext) {
    this.state = "pulsing";
    for (let n = 1; n <= count; n++) this.tick.emit({ n });
    ctx.progress(1);
    this.state = "idle";
    return count;
  }
}

let broker: Mosquitto;
let server: ThingServer;
let bench: Bench;
let logs: LogCapture;
let base: string;

const http = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${base}/bench/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
};

async function connectClient(): Promise<mqtt.MqttClient> {
  return within(
    mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 }),
    "an MQTT.js client to connect",
  );
}

beforeAll(async () => {
  broker = await Mosquitto.start();
  bench = new Bench();
  logs = new LogCapture("info");
  const entries: ThingEntry[] = [{ name: "bench", thing: bench }];
  server = new ThingServer(entries, {
    port: 0,
    logger: logs.logger,
    mqtt: {
      url: broker.url,
      topicPrefix: PREFIX,
      commands: true,
      retryMs: { first: 100, max: 400 },
      maxQueued: 1000,
    },
  });
  base = await server.start();
  await logs.waitFor(
    (line) => line.msg === "MQTT: connected to the broker",
    "the binding to connect",
  );
});

afterAll(async () => {
  await server?.close();
  await broker?.stop();
  await killAll();
  await removeTempDirs();
});

describe("publishing through Mosquitto", () => {
  it("mosquitto_sub and an MQTT.js client see every property change, event and invocation status", async () => {
    const sub = mosquittoSub(broker, `${PREFIX}/bench/#`);
    const client = await connectClient();
    const seen: { topic: string; payload: string }[] = [];
    client.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await client.subscribeAsync(`${PREFIX}/bench/#`);
    // Retained state arrives first: a subscriber is in step once it has the TD.
    await sub.waitFor(
      (lines) => lines.some((l) => l.includes(`${PREFIX}/bench/td `)),
      "the retained TD",
    );
    await until(() => seen.some((m) => m.topic === `${PREFIX}/bench/td`), "MQTT.js to get the TD");
    const before = { sub: sub.lines.length, client: seen.length };

    for (let value = 1; value <= 20; value++)
      expect((await http("PUT", "level", value)).status).toBe(204);
    const invoked = await http("POST", "pulse", { count: 3 });
    expect(invoked.status).toBe(201);

    const expectedLevels = Array.from(
      { length: 20 },
      (_, i) => `0 ${PREFIX}/bench/properties/level ${i + 1}`,
    );
    await sub.waitFor(
      (lines) =>
        lines.filter((l) => l.includes("/actions/pulse/status") && l.includes('"completed"'))
          .length === 1,
      "mosquitto_sub to see the invocation complete",
    );
    const live = sub.lines.slice(before.sub);
    // Every change, in order; a live message is not a retained replay (flag 0).
    expect(live.filter((l) => l.includes("/properties/level"))).toEqual(expectedLevels);
    expect(live.filter((l) => l.includes("/events/tick"))).toEqual(
      [1, 2, 3].map((n) => `0 ${PREFIX}/bench/events/tick {"n":${n}}`),
    );
    expect(live.filter((l) => l.includes("/properties/state"))).toEqual([
      `0 ${PREFIX}/bench/properties/state "pulsing"`,
      `0 ${PREFIX}/bench/properties/state "idle"`,
    ]);
    const statuses = live
      .filter((l) => l.includes("/actions/pulse/status"))
      .map(
        (l) =>
          JSON.parse(l.slice(l.indexOf("{"))) as { status: string; output?: unknown; href: string },
      );
    expect(statuses.map((s) => s.status)).toContain("running");
    expect(statuses.at(-1)).toMatchObject({ status: "completed", output: 3 });
    expect(statuses.at(-1)!.href).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/action_invocations\/[0-9a-f-]+$/,
    );

    await within(
      (async () => {
        while (seen.slice(before.client).filter((m) => m.topic.endsWith("/events/tick")).length < 3)
          await sleep(10);
      })(),
      "MQTT.js to see the events",
    );
    const clientLevels = seen
      .slice(before.client)
      .filter((m) => m.topic === `${PREFIX}/bench/properties/level`)
      .map((m) => Number(m.payload));
    expect(clientLevels).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await client.endAsync();
  });

  it("a late subscriber gets the TD, every current value and the online status, retained", async () => {
    await http("PUT", "level", 314);
    await sleep(50);
    const sub = mosquittoSub(broker, `${PREFIX}/#`, ["-W", "2"]);
    await sub.waitFor(
      (lines) =>
        lines.some((l) => l.includes("/properties/level")) &&
        lines.some((l) => l.includes("/td ")) &&
        lines.some((l) => l.includes(`${PREFIX}/status`)),
      "the retained messages",
    );
    expect(sub.lines).toContain(`1 ${PREFIX}/bench/properties/level 314`);
    expect(sub.lines).toContain(`1 ${PREFIX}/bench/properties/state "idle"`);
    const status = sub.lines.find((l) => l.startsWith(`1 ${PREFIX}/status `))!;
    expect(JSON.parse(status.slice(status.indexOf("{")))).toEqual({
      online: true,
      url: base,
      things: ["bench"],
    });
    const tdLine = sub.lines.find((l) => l.startsWith(`1 ${PREFIX}/bench/td `))!;
    type Forms = { forms: Record<string, unknown>[] };
    const td = JSON.parse(tdLine.slice(tdLine.indexOf("{"))) as {
      id: string;
      base: string;
      "@context": unknown[];
      properties: Record<string, Forms>;
      events: Record<string, Forms>;
      actions: Record<string, Forms>;
    };
    expect(td.id).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    expect(td.base).toBe(`${base}/bench/`);
    expect(td["@context"][1]).toMatchObject({ mqv: "https://www.w3.org/2019/wot/mqtt#" });
    expect(td.properties.level!.forms).toContainEqual({
      href: `${broker.url}/${PREFIX}/bench/properties/level`,
      op: ["readproperty", "observeproperty", "unobserveproperty"],
      contentType: "application/json",
      "mqv:filter": `${PREFIX}/bench/properties/level`,
      "mqv:retain": true,
      security: ["mqtt_nosec_sc"],
    });
    expect(td.properties.level!.forms).toContainEqual(
      expect.objectContaining({
        op: ["writeproperty"],
        "mqv:topic": `${PREFIX}/bench/properties/level/set`,
      }),
    );
    expect(td.events.tick!.forms).toContainEqual(
      expect.objectContaining({
        op: ["subscribeevent", "unsubscribeevent"],
        "mqv:filter": `${PREFIX}/bench/events/tick`,
      }),
    );
    expect(td.actions.pulse!.forms).toContainEqual(
      expect.objectContaining({
        op: ["invokeaction"],
        "mqv:topic": `${PREFIX}/bench/actions/pulse`,
      }),
    );
    // The HTTP forms come first and stay the default.
    expect(td.properties.level!.forms[0]!.href).toBe("level");
  });

  it("node-wot, with only its MQTT binding and the TD taken from the broker, reads and observes through Mosquitto", async () => {
    const client = await connectClient();
    const tdText = await within(
      new Promise<string>((resolve) => {
        client.on("message", (_topic, payload) => resolve(payload.toString()));
        void client.subscribeAsync(`${PREFIX}/bench/td`);
      }),
      "the TD from the broker",
    );
    await client.endAsync();
    const servient = new Servient();
    // 0.8.16 (the newest binding-mqtt) is typed against its own rxjs copy: same shape.
    servient.addClientFactory(new mqttBinding.MqttClientFactory() as never);
    const WoT = await servient.start();
    try {
      const thing = await WoT.consume(JSON.parse(tdText));
      await http("PUT", "level", 5);
      await sleep(50);
      expect(await (await thing.readProperty("level")).value()).toBe(5);
      const levels: unknown[] = [];
      const ticks: unknown[] = [];
      await thing.observeProperty("level", async (output) => {
        levels.push(await output.value());
      });
      await thing.subscribeEvent("tick", async (output) => {
        ticks.push(await output.value());
      });
      await sleep(200); // the subscriptions reach the broker
      await http("PUT", "level", 6);
      await http("PUT", "level", 7);
      await http("POST", "pulse", { count: 2 });
      await until(() => levels.includes(7) && ticks.length >= 2, "node-wot to see the changes");
      // The retained value first, then every change.
      expect(levels).toEqual([5, 6, 7]);
      expect(ticks).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      await servient.shutdown();
    }
  });
});

describe("commands from MQTT (commands: true)", () => {
  it("a write published to the property's set topic changes it; a bad one changes nothing and is answered", async () => {
    await run("mosquitto_pub", [
      "-h",
      "127.0.0.1",
      "-p",
      String(broker.port),
      "-t",
      `${PREFIX}/bench/properties/level/set`,
      "-m",
      "77",
    ]);
    await within(
      (async () => {
        while (bench.level !== 77) await sleep(10);
      })(),
      "the write to arrive",
    );
    expect(JSON.parse((await http("GET", "level")).body)).toBe(77);

    const client = await connectClient();
    const answers: unknown[] = [];
    client.on("message", (topic, payload) => {
      if (topic === "replies/bad") answers.push(JSON.parse(payload.toString()));
    });
    await client.subscribeAsync("replies/bad");
    await client.publishAsync(`${PREFIX}/bench/properties/level/set`, "5000", {
      properties: { responseTopic: "replies/bad", correlationData: Buffer.from("1") },
    });
    await within(
      (async () => {
        while (answers.length === 0) await sleep(10);
      })(),
      "the refusal on the response topic",
    );
    expect(answers[0]).toMatchObject({
      status: 400,
      instance: `${PREFIX}/bench/properties/level/set`,
    });
    expect(String((answers[0] as { detail: string }).detail)).toMatch(/level/);
    expect(bench.level).toBe(77);
    await client.endAsync();
  });

  it("an invocation published to the action's topic runs; its statuses go to the MQTT 5 response topic", async () => {
    const client = await connectClient();
    const replies: { status: string; output?: unknown }[] = [];
    client.on("message", (topic, payload) => {
      if (topic === "replies/pulse") replies.push(JSON.parse(payload.toString()));
    });
    await client.subscribeAsync("replies/pulse");
    await client.publishAsync(`${PREFIX}/bench/actions/pulse`, JSON.stringify({ count: 4 }), {
      properties: { responseTopic: "replies/pulse", correlationData: Buffer.from("x") },
    });
    await until(() => replies.some((r) => r.status === "completed"), "the invocation to complete");
    expect(replies.at(-1)).toMatchObject({ status: "completed", output: 4 });
    await client.endAsync();
  });
});

describe("an MQTT 3.1.1 connection (protocolVersion: 4)", () => {
  it("publishes the same way, and ignores a retained write (a replay) but takes a live one", async () => {
    const prefix = "lab/bench-v4";
    // A retained write left on the broker before the server starts: never applied.
    await run("mosquitto_pub", [
      "-h",
      "127.0.0.1",
      "-p",
      String(broker.port),
      "-r",
      "-t",
      `${prefix}/bench/properties/level/set`,
      "-m",
      "555",
    ]);
    const thing = new Bench();
    const v4Logs = new LogCapture("info");
    const v4 = new ThingServer([{ name: "bench", thing }], {
      port: 0,
      logger: v4Logs.logger,
      mqtt: { url: broker.url, topicPrefix: prefix, commands: true, protocolVersion: 4 },
    });
    const v4Base = await v4.start();
    try {
      await v4Logs.waitFor(
        (line) => line.msg === "MQTT: connected to the broker",
        "the 3.1.1 connection",
      );
      const sub = mosquittoSub(broker, `${prefix}/bench/properties/level`);
      await sub.waitFor(
        (lines) => lines.includes(`1 ${prefix}/bench/properties/level 0`),
        "the retained value",
      );
      await sleep(200);
      expect(thing.level).toBe(0);
      await run("mosquitto_pub", [
        "-h",
        "127.0.0.1",
        "-p",
        String(broker.port),
        "-t",
        `${prefix}/bench/properties/level/set`,
        "-m",
        "12",
      ]);
      await sub.waitFor(
        (lines) => lines.includes(`0 ${prefix}/bench/properties/level 12`),
        "the write, published back",
      );
      expect(JSON.parse(await (await fetch(`${v4Base}/bench/level`)).text())).toBe(12);
    } finally {
      await v4.close();
      await run("mosquitto_pub", [
        "-h",
        "127.0.0.1",
        "-p",
        String(broker.port),
        "-r",
        "-n",
        "-t",
        `${prefix}/bench/properties/level/set`,
      ]);
    }
  });
});

describe("a broker that goes away", () => {
  it("HTTP is unaffected; events wait in a bounded queue; on restart the retained state is republished", async () => {
    await broker.stop();
    await logs.waitFor(
      (line) => String(line.msg).startsWith("MQTT: lost the broker"),
      "the binding to notice",
    );
    // HTTP goes on as if nothing happened.
    expect((await http("PUT", "level", 99)).status).toBe(204);
    expect(JSON.parse((await http("GET", "level")).body)).toBe(99);
    // 3000 events while away: the newest 1000 are kept, the rest dropped (and counted).
    expect((await http("POST", "pulse", { count: 3000 })).status).toBe(201);
    await sleep(100);
    expect(server.mqtt!.stats.dropped).toBeGreaterThanOrEqual(2000);

    await broker.resume(); // an empty broker: persistence is off
    const sub = mosquittoSub(broker, `${PREFIX}/#`);
    await logs.waitFor(
      (line) => line.msg === "MQTT: reconnected to the broker",
      "the binding to reconnect",
    );
    await sub.waitFor(
      (lines) =>
        lines.some((l) => l.includes(`${PREFIX}/bench/properties/level 99`)) &&
        lines.some((l) => l.includes("/bench/td ")),
      "the republished state",
    );
    await sub.waitFor((lines) => lines.some((l) => l.endsWith('{"n":3000}')), "the queued events");
    // What waited: the newest 1000 events and statuses, in order, the oldest dropped.
    const topicOf = (line: string) => line.split(" ")[1]!;
    const queued = sub.lines.filter((l) =>
      /\/(events\/tick|actions\/pulse\/status)$/.test(topicOf(l)),
    );
    expect(queued.length).toBe(1000);
    const ticks = queued
      .filter((l) => topicOf(l).endsWith("/events/tick"))
      .map((l) => JSON.parse(l.slice(l.indexOf("{"))).n as number);
    expect(ticks.at(-1)).toBe(3000);
    expect(ticks).toEqual(Array.from({ length: ticks.length }, (_, i) => 3001 - ticks.length + i));
    // 3000 ticks and a few statuses were made; all but the 1000 kept were dropped, counted.
    expect(server.mqtt!.stats.dropped).toBeGreaterThanOrEqual(3000 - 1000);
    expect(sub.lines.find((l) => l.includes(`${PREFIX}/status `))).toMatch(/"online":true/);
  });

  it("shutdown does not wait on a broker that is down", async () => {
    await broker.stop();
    await logs.waitFor(
      (line) =>
        String(line.msg).startsWith("MQTT: lost the broker") &&
        logs.lines.filter((l) => String(l.msg).startsWith("MQTT: lost")).length >= 2,
      "the binding to notice again",
    );
    const report = await server.close();
    expect(report.forced).toBe(false);
    expect(report.durationMs).toBeLessThan(1000);
  });
});
