/**
 * labthings-ts side of `bench/observe.ts`: a ThingServer (the built package, `dist/`) with
 * one Thing `ticker` whose observable property `tick` changes `rate` times per second,
 * driven by a timer inside the Thing. Each value carries the moment it was made:
 * `{ seq, t }` with `t = performance.timeOrigin + performance.now()` (same machine clock as
 * the load client, so receive time − t is the change-to-delivery latency), and, when
 * `pad` > 0, a `pad` string of that many bytes (to fill a stalled client's socket fast).
 *
 * - `GET /ticker/tick` with `Accept: text/event-stream`: observeproperty (SSE);
 *   without it, the current value.
 * - `PUT /ticker/rate` (changes per second, 0 stops) and `PUT /ticker/pad` (bytes).
 *
 * The clock (shared with `bench/observe-bare-server.mjs`): a 1 ms interval makes the
 * changes that are due since the rate was set, at most 50 ms worth per tick; a server that
 * falls further behind skips changes, so its achieved rate shows it.
 *
 * With `BENCH_MQTT_URL` set (bench:mqtt), the MQTT binding publishes every change to
 * `bench/ticker/properties/tick` at that broker as well.
 *
 * Run with `node --import tsx bench/observe-server.ts` (the decorators need compiling).
 * Prints `{"url", "pid"}` on stdout when listening; on SIGTERM runs `server.close()`,
 * prints `{"shutdown": report}` and exits 0 (1 if the shutdown had to force anything).
 */
import { property, type Static, Thing, ThingServer, Type } from "../dist/src/index.js";

const Tick = Type.Object({
  seq: Type.Integer({ description: "Change number, +1 per change" }),
  t: Type.Number({ description: "performance.timeOrigin + performance.now() at the change, ms" }),
  pad: Type.Optional(Type.String({ description: "Padding, `pad` bytes" })),
});
type Tick = Static<typeof Tick>;

/** Most changes made in one timer tick: 50 ms worth. */
const MAX_BURST_MS = 50;

class Ticker extends Thing {
  static override title = "Ticker";
  static override description = "A property that changes `rate` times per second.";

  @property({ schema: Tick, readOnly: true, title: "The changing value" })
  accessor tick: Tick = { seq: 0, t: 0 };

  @property({ schema: Type.Integer({ minimum: 0, maximum: 65_536 }), title: "Padding bytes" })
  accessor pad = 0;

  #rate = 0;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;

  @property({ schema: Type.Number({ minimum: 0, maximum: 1_000_000 }), title: "Changes/s" })
  get rate(): number {
    return this.#rate;
  }

  set rate(value: number) {
    this.#rate = value;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (value <= 0) return;
    const startedAt = performance.now();
    const maxBurst = Math.max(1, Math.ceil((value * MAX_BURST_MS) / 1000));
    let made = 0;
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - startedAt) * value) / 1000);
      let count = due - made;
      if (count > maxBurst) {
        made += count - maxBurst; // behind: skip, no catch-up burst
        count = maxBurst;
      }
      const padding = this.pad > 0 ? "x".repeat(this.pad) : undefined;
      for (; count > 0; count--) {
        made += 1;
        this.#seq += 1;
        const t = performance.timeOrigin + performance.now();
        this.tick =
          padding === undefined ? { seq: this.#seq, t } : { seq: this.#seq, t, pad: padding };
      }
    }, 1);
  }

  override async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

// Hundreds of subscribers from one address (loopback): no per-address cap. With
// BENCH_MQTT_URL (bench:mqtt) every change is also published through that broker.
const mqttUrl = process.env.BENCH_MQTT_URL;
const server = new ThingServer([{ name: "ticker", thing: new Ticker() }], {
  port: 0,
  limits: { streamsPerClient: 0 },
  ...(mqttUrl ? { mqtt: { url: mqttUrl, topicPrefix: "bench" } } : {}),
});
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
