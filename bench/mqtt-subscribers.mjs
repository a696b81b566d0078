/**
 * The 100 MQTT subscribers of `bench/mqtt.ts`, in their own process (so their work is
 * neither the publisher's nor the bench's). Settings as JSON in BENCH_SUBSCRIBERS:
 * `{ url, topic, subscribers }`. Prints `{"event":"ready"}` once every client has
 * subscribed, then takes one JSON command per stdin line:
 *
 * - `{"cmd":"record"}`: from now on count each message (`{ seq, t }`, retained replays
 *   ignored), its latency (receive time − t, one machine clock) and seq gaps per client.
 * - `{"cmd":"settle","lastSeq":N,"timeoutMs":T}`: wait until every client has seq N (at
 *   most T), stop recording, print `{"event":"result", received, firstSeq, gaps, missing,
 *   settled, seconds, p50, p99}` (seconds: from `record` to the last delivery; missing:
 *   changes a client should have had after its first recorded one and did not).
 */
import { createInterface } from "node:readline";
import mqtt from "mqtt";

const { url, topic, subscribers = 100 } = JSON.parse(process.env.BENCH_SUBSCRIBERS ?? "{}");
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const now = () => performance.timeOrigin + performance.now();

let recording = false;
let recordAt = 0;
let lastDeliveryAt = 0;
let received = 0;
let gaps = 0;
let firstSeq = Number.POSITIVE_INFINITY;
let latencies = [];
const lastSeq = new Array(subscribers).fill(undefined);
/** Per client: the first seq recorded and how many were recorded. */
const firstRecorded = new Array(subscribers).fill(undefined);
const counts = new Array(subscribers).fill(0);

const clients = [];
for (let i = 0; i < subscribers; i++) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, protocolVersion: 5 });
  client.on("message", (_topic, payload, packet) => {
    if (packet.retain) return;
    const { seq, t } = JSON.parse(payload.toString());
    if (recording) {
      const previous = lastSeq[i];
      if (previous !== undefined && seq !== previous + 1) gaps++;
      received++;
      counts[i]++;
      if (firstRecorded[i] === undefined) firstRecorded[i] = seq;
      latencies.push(now() - t);
      lastDeliveryAt = performance.now();
      if (seq < firstSeq) firstSeq = seq;
    }
    lastSeq[i] = seq;
  });
  await client.subscribeAsync(topic, { qos: 0 });
  clients.push(client);
}
print({ event: "ready" });

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

createInterface({ input: process.stdin }).on("line", async (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "record") {
    received = 0;
    gaps = 0;
    firstSeq = Number.POSITIVE_INFINITY;
    latencies = [];
    recordAt = performance.now();
    lastDeliveryAt = recordAt;
    // Only gaps inside the window count: forget what came before.
    lastSeq.fill(undefined);
    firstRecorded.fill(undefined);
    counts.fill(0);
    recording = true;
    return;
  }
  if (command.cmd === "settle") {
    const deadline = performance.now() + (command.timeoutMs ?? 10_000);
    let settled = false;
    while (performance.now() < deadline) {
      if (lastSeq.every((seq) => seq !== undefined && seq >= command.lastSeq)) {
        settled = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    recording = false;
    const sorted = Float64Array.from(latencies).sort();
    // Changes a client should have had from its first recorded one to the last, but did not.
    let missing = 0;
    for (let i = 0; i < subscribers; i++) {
      if (firstRecorded[i] === undefined) missing += 1;
      else missing += command.lastSeq - firstRecorded[i] + 1 - counts[i];
    }
    print({
      event: "result",
      received,
      firstSeq,
      gaps,
      missing,
      settled,
      seconds: (lastDeliveryAt - recordAt) / 1000,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
    });
  }
  if (command.cmd === "exit") {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    process.exit(0);
  }
});
