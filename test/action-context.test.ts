/**
 * What an action's context does however the action uses it, over HTTP against a real
 * ThingServer on 127.0.0.1: `ctx.signal` fires on DELETE even when the action first looks
 * at it after the DELETE (the signal is made on first use), the context's members still
 * work when destructured, invocation ids are distinct version-4 UUIDs, and finished
 * invocations expire one by one, each after its own retention time (one sweep timer
 * serves them all).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ActionContext,
  type ActionStatus,
  action,
  type ThingServerOptions,
} from "../src/index.js";
import { invoke, pollStatus, statusOf, until } from "./support/actions-http.js";
import {
  closeAlone,
  GatedThing,
  GateInput,
  type ServedAlone,
  serveAlone,
} from "./support/gated-thing.js";
import { getJson, postJson } from "./support/json-http.js";
import { expectProblem } from "./support/problem.js";
import { within } from "./support/within.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

class Workbench extends GatedThing {
  static override title = "Workbench";

  /** Waits on its gate without the signal, then says whether the signal had fired. */
  @action({ input: GateInput })
  async looksLate(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait();
    ctx.logger.info(`signal aborted: ${ctx.signal.aborted}`);
    ctx.signal.throwIfAborted();
  }

  /** Uses every member of the context detached from it. */
  @action({ input: GateInput })
  async destructured(input: GateInput, ctx: ActionContext) {
    const { id, signal, progress, logger, sleep } = ctx;
    logger.info(`running as ${id}`);
    progress(0.25, "a quarter");
    await sleep(1);
    progress(0.5, "half");
    await this.gate(input.gate).wait(signal);
    // Only a cancel gets here: a long sleep that the DELETE ends.
    await sleep(60_000);
  }

  @action()
  async noop() {}

  /** Progress as a loop of float steps makes it: 0.1 + 0.2 is not 0.3. */
  @action({ input: GateInput })
  async floatSteps(input: GateInput, ctx: ActionContext) {
    ctx.progress(0.1 + 0.2 + 0.27612944000000184 - 0.3, "noisy");
    await this.gate(input.gate).wait(ctx.signal);
    ctx.progress(Number.NaN, "unknown");
  }
}

type Served = ServedAlone<Workbench>;
const serve = (options?: ThingServerOptions) => serveAlone("bench", new Workbench(), options);

describe("the action context", () => {
  let served: Served;

  beforeAll(async () => {
    served = await serve();
  });

  afterAll(async () => {
    await closeAlone(served);
  });

  it("an action that first reads ctx.signal after a DELETE finds it aborted", async () => {
    const { base, thing: bench } = served;
    const created = await invoke(base, "bench/looksLate", { gate: "late" });
    await pollStatus(base, created.id, (s) => s.status === "running", "it to run");
    const cancel = fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" });
    // The DELETE waits for the action to settle; let it arrive before the gate opens.
    await until(() => served.server.invocations.get(created.id).aborted, "the DELETE to land");
    bench.gate("late").open();
    expect((await within(cancel, "the DELETE")).status).toBe(204);
    const status = await statusOf(base, created.id);
    expect(status.status).toBe("cancelled");
    expect(status.log.map((r) => r.message)).toEqual(["signal aborted: true"]);
  });

  it("works destructured: progress, log and sleep, and a DELETE ends the sleep", async () => {
    const { base, thing: bench } = served;
    const created = await invoke(base, "bench/destructured", { gate: "apart" });
    const halfway = await pollStatus(
      base,
      created.id,
      (s) => s.progress?.fraction === 0.5,
      "progress to reach one half",
    );
    expect(halfway.progress).toEqual({ fraction: 0.5, message: "half" });
    expect(halfway.log.map((r) => r.message)).toEqual([`running as ${created.id}`]);
    bench.gate("apart").open();
    const started = performance.now();
    const cancel = await fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    // Far less than the 60 s sleep: the signal ended it.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect((await statusOf(base, created.id)).status).toBe("cancelled");
  });

  it("reports progress rounded to what a person reads (0.1 %), and NaN as unknown", async () => {
    const { base, thing: bench } = served;
    const created = await invoke(base, "bench/floatSteps", { gate: "floats" });
    const noisy = await pollStatus(base, created.id, (s) => s.progress !== undefined, "progress");
    expect(noisy.progress).toEqual({ fraction: 0.276, message: "noisy" });
    bench.gate("floats").open();
    const done = await pollStatus(base, created.id, (s) => s.status === "completed", "the end");
    expect(done.progress).toEqual({ message: "unknown" });
  });

  it("gives every invocation its own version-4 UUID", async () => {
    const { base } = served;
    const ids = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const response = await postJson(`${base}/bench/noop`);
      expect(response.status).toBe(201);
      const { id } = (await response.json()) as ActionStatus;
      expect(id).toMatch(UUID_V4);
      ids.add(id);
    }
    expect(ids.size).toBe(300);
  });
});

describe("retention of several invocations", () => {
  let served: Served | undefined;

  afterAll(async () => {
    await closeAlone(served);
  });

  it("forgets each one after its own retention time, oldest first", async () => {
    const retentionMs = 600;
    const gapMs = 300;
    served = await serve({ actionRetentionMs: retentionMs });
    const { base, server } = served;
    const first = await invoke(base, "bench/noop");
    await within(server.invocations.get(first.id).settled, "the first to finish");
    const firstEnded = server.invocations.get(first.id).timeEnded!.getTime();
    await new Promise((resolve) => setTimeout(resolve, gapMs));
    const second = await invoke(base, "bench/noop");
    await within(server.invocations.get(second.id).settled, "the second to finish");
    const secondEnded = server.invocations.get(second.id).timeEnded!.getTime();
    expect(secondEnded - firstEnded).toBeGreaterThanOrEqual(gapMs - 10);

    const listed = async () =>
      (await getJson<ActionStatus[]>(`${base}/action_invocations/`)).map((s) => s.id);
    // One list answer shows the first gone: the second, ended `gapMs` later, is still in it.
    const withoutFirst = await until(async () => {
      const ids = await listed();
      return !ids.includes(first.id) && { ids, at: Date.now() };
    }, "the first to expire");
    expect(withoutFirst.at - firstEnded).toBeGreaterThanOrEqual(retentionMs - 10);
    expect(withoutFirst.ids).toEqual([second.id]);
    await expectProblem(await fetch(`${base}/action_invocations/${first.id}`), 404);
    const secondGoneAt = await until(
      async () => (await listed()).length === 0 && Date.now(),
      "the second to expire",
    );
    expect(secondGoneAt - secondEnded).toBeGreaterThanOrEqual(retentionMs - 10);
    expect(server.invocations.size).toBe(0);
  });
});
