/**
 * `npm run bench:mqtt`: property changes delivered through a real Mosquitto broker (Debian
 * `mosquitto`, started here on 127.0.0.1 with its own config) to 100 subscribers, with the
 * instrument's CPU per change, against `mosquitto_pub` publishing the same messages (same
 * topic, same JSON, retained, QoS 0) in the same run; then the instrument's CPU with 100
 * consumers on MQTT against 100 on SSE.
 *
 * Children: `bench/observe-server.ts` twice (a ThingServer whose property `tick` changes
 * `rate` times per second from a timer inside the Thing, value `{ seq, t }`): one with
 * `BENCH_MQTT_URL` (the MQTT binding publishes each change), one without (for SSE);
 * `mosquitto_pub -l -r` fed one line per change by this process at the same rate; and
 * `bench/observe-client.mjs` for the 100 SSE subscribers. The 100 MQTT subscribers are
 * MQTT.js clients in this process (the publishers' and broker's CPU are read from /proc,
 * so this process's own work is not counted).
 *
 * 1. Per rate (100/s, 1000/s, 3000/s), rounds alternating publisher order: deliveries per
 *    second (all subscribers), whether every subscriber got every change (no seq gap),
 *    latency p50/p99 (receive − t, one clock), publisher CPU per change, broker CPU per
 *    delivery. Medians over the rounds.
 * 2. Instrument CPU at 1000/s: 100 consumers through the broker (one connection to it)
 *    against 100 SSE consumers of the server itself.
 *
 * Prints a markdown table and writes it to `bench/results/mqtt.md`. BENCH_QUICK=1 for a
 * smoke run. Every child is killed at the end, on error and on Ctrl-C; a watchdog bounds it.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import {
  cpuMs,
  environmentLines,
  int,
  launch,
  launchServer,
  median,
  ms,
  packageVersion,
  progress,
  QUICK,
  request,
  row,
  rule,
  runBench,
  type ServerChild,
  sleep,
  startRun,
  waitForJson,
  watchdog,
  writeReport,
} from "./support.js";

const SUBSCRIBERS = 100;
const RATES = QUICK ? [1000] : [100, 1000, 3000];
const ROUNDS = QUICK ? 1 : 3;
const WARMUP_MS = 500;
const MEASURE_MS = QUICK ? 1000 : 2000;
const SSE_RATE = 1000;
const TOPIC = "bench/ticker/properties/tick";
const SERVER = fileURLToPath(new URL("./observe-server.ts", import.meta.url));
const SSE_CLIENT = fileURLToPath(new URL("./observe-client.mjs", import.meta.url));
const SUBSCRIBERS_CLIENT = fileURLToPath(new URL("./mqtt-subscribers.mjs", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/mqtt.md", import.meta.url));
const WATCHDOG_MS = 5 * 60_000;

type Publisher = "labthings" | "mosquitto_pub";
const LABELS: Record<Publisher, string> = {
  labthings: "labthings-ts (MQTT binding)",
  mosquitto_pub: "mosquitto_pub -l -r",
};

const spawned: ChildProcess[] = [];
function start(command: string, args: string[], stdin: "ignore" | "pipe" = "ignore"): ChildProcess {
  const child = spawn(command, args, { stdio: [stdin, "ignore", "pipe"] });
  spawned.push(child);
  return child;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startBroker(): Promise<{ url: string; port: number; pid: number }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "bench-mosquitto-"));
  const config = join(dir, "mosquitto.conf");
  writeFileSync(
    config,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`,
  );
  const broker = start("mosquitto", ["-c", config]);
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const probe = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 });
      await probe.endAsync();
      return { url, port, pid: broker.pid! };
    } catch {
      await sleep(25);
    }
  }
  throw new Error("mosquitto did not start");
}

/** The subscriber process (`bench/mqtt-subscribers.mjs`): one JSON command per line. */
class Subscribers {
  readonly #child: ChildProcess;
  readonly #waiting: ((record: Record<string, unknown>) => void)[] = [];

  constructor(brokerUrl: string) {
    this.#child = spawn(process.execPath, [SUBSCRIBERS_CLIENT], {
      stdio: ["pipe", "pipe", "inherit"],
      env: {
        ...process.env,
        BENCH_SUBSCRIBERS: JSON.stringify({
          url: brokerUrl,
          topic: TOPIC,
          subscribers: SUBSCRIBERS,
        }),
      },
    });
    spawned.push(this.#child);
    createInterface({ input: this.#child.stdout! }).on("line", (line) => {
      this.#waiting.shift()?.(JSON.parse(line) as Record<string, unknown>);
    });
  }

  #next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("the subscriber process did not answer")),
        60_000,
      );
      this.#waiting.push((record) => {
        clearTimeout(timer);
        resolve(record);
      });
    });
  }

  ready(): Promise<Record<string, unknown>> {
    return this.#next();
  }

  record(): void {
    this.#child.stdin!.write(`${JSON.stringify({ cmd: "record" })}\n`);
  }

  settle(lastSeq: number): Promise<Record<string, unknown>> {
    const answer = this.#next();
    this.#child.stdin!.write(`${JSON.stringify({ cmd: "settle", lastSeq, timeoutMs: 15_000 })}\n`);
    return answer;
  }

  close(): void {
    this.#child.stdin!.write(`${JSON.stringify({ cmd: "exit" })}\n`);
  }
}

/** Feeds mosquitto_pub one `{ seq, t }` line per change at `rate`, from a 1 ms timer. */
class PubFeeder {
  readonly child: ChildProcess;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;

  constructor(brokerPort: number) {
    this.child = start(
      "mosquitto_pub",
      ["-h", "127.0.0.1", "-p", String(brokerPort), "-t", TOPIC, "-l", "-r", "-q", "0"],
      "pipe",
    );
  }

  run(rate: number): void {
    this.stop();
    if (rate <= 0) return;
    const startedAt = performance.now();
    let made = 0;
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - startedAt) * rate) / 1000);
      let lines = "";
      for (; made < due; made++) {
        this.#seq++;
        lines += `${JSON.stringify({ seq: this.#seq, t: performance.timeOrigin + performance.now() })}\n`;
      }
      if (lines !== "") this.child.stdin!.write(lines);
    }, 1);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get seq(): number {
    return this.#seq;
  }
}

interface Measurement {
  publisher: Publisher;
  rate: number;
  changes: number;
  deliveredPerSecond: number;
  complete: boolean;
  p50: number;
  p99: number;
  publisherCpuUsPerChange: number;
  brokerCpuUsPerDelivery: number;
  publisherCpuMsPerSecond: number;
}

async function measure(
  publisher: Publisher,
  rate: number,
  subscribers: Subscribers,
  context: { server: ServerChild; feeder: PubFeeder; brokerPid: number },
): Promise<Measurement> {
  const pid = publisher === "labthings" ? context.server.pid : context.feeder.child.pid!;
  const setRate = async (value: number) => {
    if (publisher === "labthings")
      await request(`${context.server.url}/ticker/rate`, "PUT", { json: value });
    else context.feeder.run(value);
  };
  await setRate(rate);
  await sleep(WARMUP_MS);
  subscribers.record();
  const cpu0 = cpuMs(pid);
  const broker0 = cpuMs(context.brokerPid);
  const began = performance.now();
  await sleep(MEASURE_MS);
  await setRate(0);
  const cpu1 = cpuMs(pid);
  const seconds = (performance.now() - began) / 1000;
  const lastSeq =
    publisher === "labthings"
      ? (
          JSON.parse((await request(`${context.server.url}/ticker/tick`, "GET")).body) as {
            seq: number;
          }
        ).seq
      : context.feeder.seq;
  const result = await subscribers.settle(lastSeq);
  const broker1 = cpuMs(context.brokerPid);
  const received = Number(result.received);
  const changes = lastSeq - Number(result.firstSeq) + 1;
  return {
    publisher,
    rate,
    changes,
    // Over the time from the first recorded delivery to the last one (lagging included).
    deliveredPerSecond: received / Math.max(seconds, Number(result.seconds)),
    // Every subscriber got every change of the window, in order.
    complete: result.settled === true && Number(result.gaps) === 0 && Number(result.missing) === 0,
    p50: Number(result.p50),
    p99: Number(result.p99),
    publisherCpuUsPerChange: ((cpu1 - cpu0) * 1000) / Math.max(1, changes),
    brokerCpuUsPerDelivery: ((broker1 - broker0) * 1000) / Math.max(1, received),
    publisherCpuMsPerSecond: (cpu1 - cpu0) / seconds,
  };
}

/** The Thing alone (the server without MQTT, no consumers): its CPU per change at `rate`. */
async function thingAlone(server: ServerChild, rate: number): Promise<number> {
  const seq = async () =>
    (JSON.parse((await request(`${server.url}/ticker/tick`, "GET")).body) as { seq: number }).seq;
  await request(`${server.url}/ticker/rate`, "PUT", { json: rate });
  await sleep(WARMUP_MS);
  const [cpu0, seq0] = [cpuMs(server.pid), await seq()];
  await sleep(MEASURE_MS);
  const [cpu1, seq1] = [cpuMs(server.pid), await seq()];
  await request(`${server.url}/ticker/rate`, "PUT", { json: 0 });
  return ((cpu1 - cpu0) * 1000) / Math.max(1, seq1 - seq0);
}

async function sseCpu(
  server: ServerChild,
): Promise<{ cpuMsPerSecond: number; deliveredPerSecond: number; complete: boolean }> {
  const client = launch("SSE load client", [SSE_CLIENT], {
    BENCH_CLIENT: JSON.stringify({
      url: server.url,
      serverPid: server.pid,
      subscribers: SUBSCRIBERS,
      warmupMs: WARMUP_MS,
      measureMs: MEASURE_MS,
      mode: "rate",
      rate: SSE_RATE,
    }),
  });
  const result = await waitForJson(
    client,
    (r) => r.event === "result" || r.event === "error",
    45_000,
  );
  if (result.event === "error") throw new Error(`SSE client: ${String(result.message)}`);
  return {
    cpuMsPerSecond: Number(result.serverCpuMs) / Number(result.seconds),
    deliveredPerSecond: Number(result.deliveredPerSecond),
    complete: Number(result.gaps) === 0 && result.settled === true,
  };
}

const medianOf = (runs: Measurement[], key: keyof Measurement) =>
  median(runs.map((run) => Number(run[key])));

async function main(): Promise<void> {
  watchdog(WATCHDOG_MS, `bench:mqtt: still running after ${WATCHDOG_MS / 1000} s: aborted`);
  const meta = startRun();
  progress("starting Mosquitto and the servers");
  const broker = await startBroker();
  const [server, sseServer] = await Promise.all([
    launchServer(
      "labthings-ts (MQTT)",
      ["--import", "tsx", SERVER],
      { BENCH_MQTT_URL: broker.url },
      20_000,
    ),
    launchServer("labthings-ts (SSE)", ["--import", "tsx", SERVER], {}, 20_000),
  ]);
  const feeder = new PubFeeder(broker.port);
  const subscribers = new Subscribers(broker.url);
  await subscribers.ready();
  const context = { server, feeder, brokerPid: broker.pid };

  const results = new Map<number, Record<Publisher, Measurement[]>>();
  const thingCost = new Map<number, number>();
  for (const rate of RATES) {
    const runs: Record<Publisher, Measurement[]> = { labthings: [], mosquitto_pub: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order: Publisher[] =
        round % 2 === 0 ? ["labthings", "mosquitto_pub"] : ["mosquitto_pub", "labthings"];
      for (const publisher of order) {
        progress(`${rate}/s: round ${round + 1}/${ROUNDS}, ${LABELS[publisher]}`);
        runs[publisher].push(await measure(publisher, rate, subscribers, context));
      }
    }
    results.set(rate, runs);
    const alone: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      progress(`${rate}/s: round ${round + 1}/${ROUNDS}, the Thing alone (no MQTT, no consumers)`);
      alone.push(await thingAlone(sseServer, rate));
    }
    thingCost.set(rate, median(alone));
  }
  const sse: Awaited<ReturnType<typeof sseCpu>>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    progress(`SSE at ${SSE_RATE}/s: round ${round + 1}/${ROUNDS}`);
    sse.push(await sseCpu(sseServer));
  }
  subscribers.close();

  const lines: string[] = [
    "# bench:mqtt",
    "",
    `Property changes (\`{ seq, t }\`, retained, QoS 0) through Mosquitto to ${SUBSCRIBERS} MQTT.js subscribers, from labthings-ts's MQTT binding and from \`mosquitto_pub -l -r\` publishing the same messages, in the same run. Medians of ${ROUNDS} round(s) of ${MEASURE_MS} ms.`,
    "",
    ...environmentLines(meta()),
    `- mqtt (MQTT.js) ${packageVersion("mqtt")}; broker: ${spawnVersion()}`,
    "",
    row([
      "rate (changes/s)",
      "publisher",
      "delivered/s (all subscribers)",
      "every change to every subscriber",
      "p50 ms",
      "p99 ms",
      "publisher CPU µs/change",
      "of it, the MQTT binding",
      "broker CPU µs/delivery",
      "binding vs mosquitto_pub",
    ]),
    rule(10),
  ];
  for (const [rate, runs] of results) {
    const baseline = medianOf(runs.mosquitto_pub, "publisherCpuUsPerChange");
    for (const publisher of ["labthings", "mosquitto_pub"] as const) {
      const own = medianOf(runs[publisher], "publisherCpuUsPerChange");
      // The instrument's CPU beyond what the Thing costs without MQTT: the binding's share.
      const binding = own - (thingCost.get(rate) ?? 0);
      lines.push(
        row([
          rate,
          LABELS[publisher],
          int(medianOf(runs[publisher], "deliveredPerSecond")),
          runs[publisher].every((run) => run.complete) ? "yes" : "no",
          ms(medianOf(runs[publisher], "p50")),
          ms(medianOf(runs[publisher], "p99")),
          own.toFixed(1),
          publisher === "labthings" ? binding.toFixed(1) : "(all)",
          medianOf(runs[publisher], "brokerCpuUsPerDelivery").toFixed(2),
          publisher === "labthings" ? `${(binding / baseline).toFixed(2)}×` : "1×",
        ]),
      );
    }
  }
  const mqttAtSse = results.get(SSE_RATE)?.labthings ?? results.get(RATES.at(-1)!)!.labthings;
  const mqttCpu = medianOf(mqttAtSse, "publisherCpuMsPerSecond");
  const sseCpuMs = median(sse.map((s) => s.cpuMsPerSecond));
  lines.push(
    "",
    `Instrument CPU at ${SSE_RATE} changes/s with ${SUBSCRIBERS} consumers:`,
    "",
    row([
      "consumers",
      "instrument CPU ms/s (% of a core ÷ 10)",
      "deliveries/s",
      "every change",
      "vs SSE",
    ]),
    rule(5),
    row([
      `${SUBSCRIBERS} on MQTT (through Mosquitto)`,
      mqttCpu.toFixed(1),
      int(medianOf(mqttAtSse, "deliveredPerSecond")),
      mqttAtSse.every((r) => r.complete) ? "yes" : "no",
      `${(mqttCpu / sseCpuMs).toFixed(2)}×`,
    ]),
    row([
      `${SUBSCRIBERS} on SSE (direct)`,
      sseCpuMs.toFixed(1),
      int(median(sse.map((s) => s.deliveredPerSecond))),
      sse.every((s) => s.complete) ? "yes" : "no",
      "1×",
    ]),
    "",
  );
  writeReport(RESULTS, lines.join("\n"));
}

/** `mosquitto version 2.0.11` (the first line `mosquitto -h` prints). */
function spawnVersion(): string {
  return spawnSync("mosquitto", ["-h"], { encoding: "utf8" }).stdout.split("\n")[0] || "mosquitto";
}

runBench("mqtt", main, () => {
  for (const child of spawned) if (child.exitCode === null) child.kill("SIGKILL");
});
