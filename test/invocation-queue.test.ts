/**
 * The bounded invocation queue (`limits.pendingInvocations`), flooded over real HTTP: a
 * few hundred `moveRelative` POSTs on many connections at once against a stage whose moves
 * take a while (they queue on the "stage" lock). The server accepts up to the cap, answers
 * the rest 503 Problem Details with `Retry-After`, never holds more than the cap unfinished,
 * and takes invocations again once some have finished. (The memory under a flood of
 * thousands is measured by `npm run bench:shutdown`, not here.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/index.js";
import { type ActionStatus, ThingServer } from "../src/index.js";
import { expectProblem } from "./support/problem.js";
import { rawPost as post, type RawResponse } from "./support/raw-http.js";
import { within } from "./support/within.js";

const CAP = 25;
const FLOOD = 400;
/** Requests in flight at once, each on its own connection. */
const CONCURRENCY = 40;

describe("a flood of invocations against limits.pendingInvocations", () => {
  let server: ThingServer;
  let base: string;
  let stage: SimulatedStage;

  beforeAll(async () => {
    stage = new SimulatedStage();
    server = new ThingServer([{ name: "stage", thing: stage }], {
      port: 0,
      limits: { pendingInvocations: CAP },
    });
    base = await server.start();
    // Slow moves (1 step per 5 ms): they pile up on the stage lock while the flood lasts.
    stage.speed = 200;
  });

  afterAll(() => server && within(server.close(), "the server to close"));

  it("accepts up to the cap, refuses the rest with 503 and Retry-After, and never holds more", async () => {
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, server.invocations.unfinished);
    }, 1);
    const results: RawResponse[] = [];
    try {
      let next = 0;
      await within(
        Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < FLOOD) {
              next += 1;
              results.push(await post(`${base}/stage/moveRelative`, { x: 1 }));
              peak = Math.max(peak, server.invocations.unfinished);
            }
          }),
        ),
        "the flood",
      );
    } finally {
      clearInterval(sampler);
    }
    const accepted = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 503);
    console.log(
      `flood: ${FLOOD} POSTs, ${accepted.length} accepted, ${refused.length} refused, peak unfinished ${peak} (cap ${CAP})`,
    );
    expect(accepted.length + refused.length).toBe(FLOOD);
    expect(accepted.length).toBeGreaterThanOrEqual(CAP);
    expect(refused.length).toBeGreaterThan(FLOOD / 2);
    expect(peak).toBeLessThanOrEqual(CAP);
    for (const refusal of refused.slice(0, 5)) {
      expect(refusal.headers["retry-after"]).toBe("1");
      const problem = JSON.parse(refusal.body.toString());
      expect(problem).toMatchObject({
        type: "tag:labthings-ts,2026:queue-full",
        status: 503,
        instance: "/stage/moveRelative",
      });
      expect(problem.detail).toContain("limits.pendingInvocations");
    }
    // A refusal made no invocation: every one the server knows was answered 201.
    const ids = new Set(accepted.map((r) => (JSON.parse(r.body.toString()) as ActionStatus).id));
    expect(server.invocations.list().every((i) => ids.has(i.id))).toBe(true);
  });

  it("takes invocations again once the queue has drained", async () => {
    await within(
      Promise.all(server.invocations.list().map((i) => i.settled)),
      "the queued moves to finish",
      60_000,
    );
    expect(server.invocations.unfinished).toBe(0);
    const again = await fetch(`${base}/stage/moveRelative`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x: 1 }),
    });
    expect(again.status).toBe(201);
    await again.arrayBuffer();
  });

  it("the cap is a config key: 0 turns it off, a negative one is refused", async () => {
    const { validateConfig } = await import("../src/config/load-config.js");
    expect(() =>
      validateConfig({ things: { stage: "x#Y" }, limits: { pendingInvocations: -1 } }),
    ).toThrow(/limits\.pendingInvocations/);
    const open = new ThingServer([{ name: "stage", thing: new SimulatedStage() }], {
      port: 0,
      limits: { pendingInvocations: 0 },
    });
    const openBase = await open.start();
    try {
      const statuses = await Promise.all(
        Array.from({ length: 3 * CAP }, () =>
          post(`${openBase}/stage/moveRelative`, { x: 1 }).then((r) => r.status),
        ),
      );
      expect(new Set(statuses)).toEqual(new Set([201]));
    } finally {
      await within(open.close(), "the uncapped server to close");
    }
  });

  it("a refusal is Problem Details for fetch too", async () => {
    stage.speed = 1;
    const first = await Promise.all(
      Array.from({ length: CAP }, () =>
        fetch(`${base}/stage/moveRelative`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ x: 1 }),
        }).then((r) => r.arrayBuffer().then(() => r.status)),
      ),
    );
    expect(first.every((status) => status === 201)).toBe(true);
    const refused = await fetch(`${base}/stage/moveRelative`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x: 1 }),
    });
    await expectProblem(refused, 503);
    expect(refused.headers.get("retry-after")).toBe("1");
  });
});
