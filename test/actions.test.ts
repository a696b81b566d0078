/**
 * Actions over HTTP (WoT HTTP Basic Profile, asynchronous action responses) against a
 * real ThingServer on 127.0.0.1 with the global fetch: the life of an invocation
 * (pending → running → completed, progress, log), input validation before an invocation
 * exists, cancellation, failures, output validation, synchronous actions, concurrency,
 * locks (waiting, fail-fast, bounded wait, property writes), retention, blobs (Range,
 * files, path traversal), the TD's action forms, memory after many invocations, and
 * what server.close() does to running actions.
 *
 * "While it runs" is a state the test controls: actions wait on gates the test opens.
 */
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ActionContext,
  type ActionStatus,
  action,
  BlobOutput,
  blobOutput,
  property,
  type ShutdownReport,
  type Static,
  Thing,
  ThingServer,
  type ThingServerOptions,
  Type,
} from "../src/index.js";
import {
  FINISHED,
  Gate,
  invoke,
  pollStatus,
  RFC3339,
  statusOf,
  until,
  WAIT_MS,
} from "./support/actions-http.js";
import {
  CountInput,
  CountOutput,
  closeAlone,
  countInSteps,
  GatedThing,
  GateInput,
  type ServedAlone,
  serveAlone,
} from "./support/gated-thing.js";
import { getJson, postJson, putJson } from "./support/json-http.js";
import { expectProblem } from "./support/problem.js";
import { parseResponses, RawConnection, rawGet } from "./support/raw-http.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

// ─── the Things under test ───────────────────────────────────────────────────────────

/** 1000 bytes that are not all alike, so a wrong offset shows. */
const Labels = Type.Object(
  { label: Type.Optional(Type.String()), times: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);

const LOCK_BUSY_TYPE =
  "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html#labthings_fastapi.exceptions.GlobalLockBusyError";
const KNOWN_BYTES = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) % 256));
/** Contents of the file blob. */
const FILE_BYTES = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 13 + 1) % 256));

/** A Thing with one action per behaviour under test. Gates are named by the test. */
class Lab extends GatedThing {
  static override title = "Lab";
  /** Invocation ids whose `finally` ran. */
  readonly cleanedUp = new Set<string>();
  /** Temporary files the `file` action wrote (before the blob store moved them). */
  readonly tempFiles: string[] = [];

  @property({ schema: Type.Number(), lock: "stage", title: "Focus offset" })
  accessor focusOffset = 0;

  /** Counts in steps, with progress and a log record per step; pauses halfway on a gate. */
  @action({ input: CountInput, output: CountOutput, lock: "sequence", title: "Count" })
  async count(input: CountInput, ctx: ActionContext) {
    return countInSteps(input, this.gate(input.gate), ctx);
  }

  /** Holds the "sequence" lock until its gate opens. */
  @action({ input: GateInput, lock: "sequence" })
  async holdSequence(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait(ctx.signal);
  }

  /** No lock: waits on its gate; its `finally` is recorded. */
  @action({ input: GateInput })
  async wait(input: GateInput, ctx: ActionContext) {
    try {
      await this.gate(input.gate).wait(ctx.signal);
    } finally {
      this.cleanedUp.add(ctx.id);
    }
  }

  /** Holds the "stage" lock until its gate opens. */
  @action({ input: GateInput, lock: "stage" })
  async hold(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait(ctx.signal);
  }

  /** A quick action needing the "stage" lock. */
  @action({ lock: "stage", output: Type.String() })
  async step() {
    return "stepped";
  }

  @action({ input: GateInput, lock: { name: "x", waitMs: 0 } })
  async exclusive(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait(ctx.signal);
  }

  @action({ input: GateInput, lock: { name: "y", waitMs: 200 } })
  async patient(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait(ctx.signal);
  }

  @action({
    input: Type.Object(
      { gain: Type.Number({ minimum: 0, maximum: 10 }), label: Type.String() },
      { additionalProperties: false },
    ),
    output: Type.Number(),
  })
  async configure(input: { gain: number; label: string }) {
    return input.gain;
  }

  @action({ output: Type.String(), safe: true, idempotent: true })
  async ping() {
    return "pong";
  }

  /** Every input member optional: no body means `{}`. */
  @action({ input: Labels, output: Labels })
  async label(input: Static<typeof Labels>) {
    return input;
  }

  @action()
  async boom() {
    throw new TypeError("boom");
  }

  @action({ output: Type.Object({ value: Type.Number() }) })
  async badOutput() {
    return { value: "not a number" } as unknown as { value: number };
  }

  @action({
    input: Type.Object({ a: Type.Number(), b: Type.Number() }),
    output: Type.Number(),
    synchronous: true,
  })
  async add(input: { a: number; b: number }) {
    return input.a + input.b;
  }

  @action({ synchronous: true })
  async reset() {
    this.focusOffset = 0;
  }

  @action({ synchronous: true })
  async explode() {
    throw new TypeError("boom");
  }

  @action({ output: blobOutput("application/octet-stream") })
  async bytes() {
    return BlobOutput.fromBytes(new Uint8Array(KNOWN_BYTES), "application/octet-stream");
  }

  @action({ output: blobOutput("application/octet-stream") })
  async empty() {
    return BlobOutput.fromBytes(new Uint8Array(0), "application/octet-stream");
  }

  @action({ output: blobOutput("image/png") })
  async file() {
    const folder = await tempDir("actions-test-");
    const path = join(folder, "capture.png");
    await writeFile(path, FILE_BYTES);
    this.tempFiles.push(path);
    return BlobOutput.fromFile(path, "image/png");
  }

  /** Returns a blob once its gate opens. */
  @action({ input: GateInput, output: blobOutput("application/octet-stream") })
  async blobAfter(input: GateInput, ctx: ActionContext) {
    await this.gate(input.gate).wait(ctx.signal);
    return BlobOutput.fromBytes(KNOWN_BYTES, "application/octet-stream");
  }

  /** Invocations of `noop` and `smallBlob` that ran to their end. */
  quickRuns = 0;

  /** Does nothing with its (optional, padding) input. */
  @action({ input: Type.Object({ pad: Type.Optional(Type.String()) }) })
  async noop() {
    this.quickRuns += 1;
  }

  @action({ output: blobOutput("application/octet-stream") })
  async smallBlob() {
    this.quickRuns += 1;
    return BlobOutput.fromBytes(Buffer.alloc(10_000, 1), "application/octet-stream");
  }
}

// ─── helpers ──────────────────────────────────────────────────────────────────────────

/** The folders `Lab.file()` wrote its temporary files into. */
afterAll(removeTempDirs);

let gateCounter = 0;
/** A fresh gate name for one test. */
const newGate = () => `gate-${++gateCounter}`;

type Served = ServedAlone<Lab>;
const serve = (options?: ThingServerOptions) => serveAlone("lab", new Lab(), options);

/** Wait for an invocation to settle, by its promise in the server (an event, bounded). */
async function settled(server: ThingServer, id: string): Promise<void> {
  await within(server.invocations.get(id).settled, `invocation ${id} to settle`);
}

const time = (iso: string | undefined) => {
  expect(iso).toMatch(RFC3339);
  return Date.parse(iso!);
};

// ─── the life of an invocation ───────────────────────────────────────────────────────

describe("actions on one server", () => {
  let served: Served;
  let base: string;
  let lab: Lab;
  let server: ThingServer;

  beforeAll(async () => {
    served = await serve();
    ({ base, thing: lab, server } = served);
  });

  afterAll(async () => {
    await closeAlone(served);
  });

  it("goes pending → running (with progress and log) → completed, with ordered RFC 3339 times", async () => {
    // Hold the "sequence" lock so that the counting invocation has to wait: pending.
    const holdGate = newGate();
    const countGate = newGate();
    const holder = await invoke(base, "lab/holdSequence", { gate: holdGate });
    expect(["pending", "running"]).toContain(holder.status);

    const created = await invoke(base, "lab/count", { steps: 10, gate: countGate });
    expect(created).toMatchObject({
      thing: "lab",
      action: "count",
      status: "pending",
      input: { steps: 10, gate: countGate },
      log: [],
    });
    expect(created.timeRequested).toMatch(RFC3339);
    expect(created.timeStarted).toBeUndefined();
    expect(created.timeEnded).toBeUndefined();
    expect(created.output).toBeUndefined();

    // Every change, as the server sees it, from now on.
    const seen: { status: string; fraction: number | undefined }[] = [];
    server.invocations.get(created.id).onChange((i) => {
      seen.push({ status: i.status, fraction: i.progress?.fraction });
    });
    expect((await statusOf(base, created.id)).status).toBe("pending");

    lab.gate(holdGate).open();
    const running = await pollStatus(
      base,
      created.id,
      (s) => s.status === "running" && s.progress?.fraction === 0.5,
      "count to run up to its halfway gate",
    );
    expect(running.progress).toEqual({ fraction: 0.5, message: "step 5" });
    expect(running.log.map((r) => r.message)).toEqual([
      "step 1 of 10",
      "step 2 of 10",
      "step 3 of 10",
      "step 4 of 10",
      "step 5 of 10",
    ]);
    for (const record of running.log) {
      expect(record.level).toBe("info");
      expect(record.time).toMatch(RFC3339);
    }
    expect(running.timeStarted).toMatch(RFC3339);
    expect(running.timeEnded).toBeUndefined();

    lab.gate(countGate).open();
    await settled(server, created.id);
    const done = await statusOf(base, created.id);
    expect(done).toMatchObject({
      id: created.id,
      href: `/action_invocations/${created.id}`,
      thing: "lab",
      action: "count",
      status: "completed",
      output: { counted: 10 },
      progress: { fraction: 1, message: "step 10" },
    });
    expect(done.error).toBeUndefined();
    expect(done.log).toHaveLength(10);
    const requested = time(done.timeRequested);
    const started = time(done.timeStarted);
    const ended = time(done.timeEnded);
    expect(requested).toBeLessThanOrEqual(started);
    expect(started).toBeLessThanOrEqual(ended);
    // It could only start once the holder had ended.
    const holderDone = await statusOf(base, holder.id);
    expect(holderDone.status).toBe("completed");
    expect(started).toBeGreaterThanOrEqual(time(holderDone.timeEnded));

    // The statuses went running → completed (pending was before the listener), and
    // progress never went backwards.
    const statuses = seen.map((s) => s.status).filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(["running", "completed"]);
    const fractions = seen.map((s) => s.fraction).filter((f) => f !== undefined);
    expect(fractions.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < fractions.length; i++) {
      expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]!);
    }
    expect(fractions.at(-1)).toBe(1);

    // The lists show it, newest first.
    const list = await getJson<ActionStatus[]>(`${base}/lab/count`);
    expect(list[0]!.id).toBe(created.id);
    const all = await getJson<ActionStatus[]>(`${base}/action_invocations/`);
    expect(all.findIndex((s) => s.id === created.id)).toBeLessThan(
      all.findIndex((s) => s.id === holder.id),
    );
    const byAction = await getJson<Record<string, ActionStatus[]>>(`${base}/lab/actions`);
    expect(byAction.count!.map((s) => s.id)).toContain(created.id);
    expect(byAction.holdSequence!.map((s) => s.id)).toContain(holder.id);
    expect(Object.keys(byAction).sort()).toEqual(
      [
        "add",
        "badOutput",
        "blobAfter",
        "boom",
        "bytes",
        "configure",
        "count",
        "empty",
        "exclusive",
        "explode",
        "file",
        "hold",
        "holdSequence",
        "label",
        "noop",
        "patient",
        "ping",
        "reset",
        "smallBlob",
        "step",
        "wait",
      ].sort(),
    );
  });

  it("rejects invalid input with 400 naming the field, and creates no invocation", async () => {
    const before = await getJson<ActionStatus[]>(`${base}/action_invocations/`);
    const sizeBefore = server.invocations.size;

    const tooHigh = await expectProblem(
      await postJson(`${base}/lab/configure`, { gain: 99, label: "x" }),
      400,
    );
    expect(tooHigh.errors?.[0]).toMatchObject({ field: "/gain", rule: "maximum" });
    expect(tooHigh.detail).toContain("gain");

    const missing = await expectProblem(await postJson(`${base}/lab/configure`, { gain: 1 }), 400);
    // A missing member is named at the object it is missing from: the input itself.
    expect(missing.errors?.[0]).toMatchObject({
      field: "/",
      rule: "required",
      message: "must have required property 'label'",
    });

    const wrongType = await expectProblem(
      await postJson(`${base}/lab/configure`, { gain: "1", label: "x" }),
      400,
    );
    expect(wrongType.errors?.[0]).toMatchObject({ field: "/gain", rule: "type" });

    const extra = await expectProblem(
      await postJson(`${base}/lab/configure`, { gain: 1, label: "x", colour: "red" }),
      400,
    );
    expect(extra.errors?.[0]).toMatchObject({
      field: "/colour",
      rule: "additionalProperties",
    });

    // No body at all for an action that needs input.
    await expectProblem(await postJson(`${base}/lab/configure`), 400);
    // Not JSON.
    await expectProblem(
      await fetch(`${base}/lab/configure`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{gain:",
      }),
      400,
    );

    // JSON reads 1e400 as Infinity, which ajv would take for an integer: `times` has no
    // maximum, so only the finiteness check stands between it and the action.
    const infinite = await expectProblem(
      await fetch(`${base}/lab/label`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"times": 1e400}',
      }),
      400,
    );
    expect(infinite.errors).toEqual([
      { field: "/times", rule: "finite", message: "must be a finite number (not too large)" },
    ]);

    // An action without input, given one.
    const noInput = await expectProblem(await postJson(`${base}/lab/ping`, { x: 1 }), 400);
    expect(noInput.errors?.[0]).toMatchObject({ field: "/", rule: "noInput" });
    await expectProblem(await postJson(`${base}/lab/ping`, "hello"), 400);

    expect(server.invocations.size).toBe(sizeBefore);
    const after = await getJson<ActionStatus[]>(`${base}/action_invocations/`);
    expect(after.map((s) => s.id)).toEqual(before.map((s) => s.id));
    expect(await getJson(`${base}/lab/configure`)).toEqual([]);

    // The same action with a valid input works.
    const ok = await invoke(base, "lab/configure", { gain: 2.5, label: "x" });
    await settled(server, ok.id);
    expect(await statusOf(base, ok.id)).toMatchObject({ status: "completed", output: 2.5 });
  });

  it("takes `{}` or no body without input, no body as `{}` when no member is required; validates the rest", async () => {
    // labthings-fastapi's ThingClient always sends a JSON object: `{}` for no arguments.
    for (const body of [undefined, {}]) {
      const ping = await invoke(base, "lab/ping", body);
      expect(ping.input).toBeUndefined();
      await settled(server, ping.id);
      expect(await statusOf(base, ping.id)).toMatchObject({ status: "completed", output: "pong" });
    }
    const bare = await invoke(base, "lab/label");
    expect(bare.input).toEqual({});
    await settled(server, bare.id);
    expect(await statusOf(base, bare.id)).toMatchObject({ status: "completed", output: {} });
    // A chunked body of no bytes (Python's requests with a generator, Java's
    // ofInputStream) is no body too; a chunked `null` is still a `null`.
    const chunked = async (text: string) => {
      const connection = await RawConnection.open(Number(new URL(base).port));
      const chunk = text ? `${text.length.toString(16)}\r\n${text}\r\n` : "";
      connection.socket.write(
        `POST /lab/label HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}0\r\n\r\n`,
      );
      await connection.responses(1, "the chunked POST's answer");
      return parseResponses(connection.text)[0]!;
    };
    const streamed = await chunked("");
    expect(streamed.status, streamed.body).toBe(201);
    expect((JSON.parse(streamed.body) as ActionStatus).input).toEqual({});
    await settled(server, (JSON.parse(streamed.body) as ActionStatus).id);
    expect((await chunked("null")).status).toBe(400);
    const given = await invoke(base, "lab/label", { label: "a", times: 2 });
    await settled(server, given.id);
    expect((await statusOf(base, given.id)).output).toEqual({ label: "a", times: 2 });

    const sizeBefore = server.invocations.size;
    for (const body of [[], null, "x", { times: 0 }, { colour: "red" }]) {
      await expectProblem(await postJson(`${base}/lab/label`, body), 400);
    }
    for (const body of [[], { x: 1 }, 0]) {
      await expectProblem(await postJson(`${base}/lab/ping`, body), 400);
    }
    // An action whose input has a required member still needs it.
    await expectProblem(await postJson(`${base}/lab/configure`, {}), 400);
    expect(server.invocations.size).toBe(sizeBefore);
  });

  it("GET /action_invocations/{id}/output: the output alone, 409 without one, 404 unknown", async () => {
    const given = await invoke(base, "lab/label", { label: "b" });
    await settled(server, given.id);
    const output = await fetch(`${base}/action_invocations/${given.id}/output`);
    expect(output.status).toBe(200);
    expect(output.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await output.json()).toEqual({ label: "b" });
    expect((await statusOf(base, given.id)).links).toEqual([
      { rel: "self", href: `/action_invocations/${given.id}` },
      { rel: "output", href: `/action_invocations/${given.id}/output` },
    ]);

    const gate = newGate();
    const running = await invoke(base, "lab/wait", { gate });
    expect(running.links).toEqual([{ rel: "self", href: `/action_invocations/${running.id}` }]);
    const notYet = await expectProblem(
      await fetch(`${base}/action_invocations/${running.id}/output`),
      409,
    );
    expect(notYet.detail).toMatch(/no output yet/);
    lab.gate(gate).open();
    await settled(server, running.id);
    const none = await statusOf(base, running.id);
    expect(none).toMatchObject({ status: "completed", output: null });
    expect(none.timeCompleted).toBe(none.timeEnded);
    await expectProblem(await fetch(`${base}/action_invocations/${running.id}/output`), 409);
    await expectProblem(
      await fetch(`${base}/action_invocations/00000000-0000-4000-8000-000000000000/output`),
      404,
    );
  });

  it("cancels a running invocation: 204 once settled, `cancelled`, its finally ran; 404 and 409 otherwise", async () => {
    const gate = newGate();
    const created = await invoke(base, "lab/wait", { gate });
    await pollStatus(base, created.id, (s) => s.status === "running", "wait to run");
    expect(lab.cleanedUp.has(created.id)).toBe(false);

    const cancel = await fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    expect(await cancel.text()).toBe("");
    // 204 came after the invocation settled: its finally has run, its status says so.
    expect(lab.cleanedUp.has(created.id)).toBe(true);
    const cancelled = await statusOf(base, created.id);
    expect(cancelled.status).toBe("cancelled");
    // labthings-fastapi's ThingClient raises InvocationCancelledError for this type.
    expect(cancelled.error).toEqual({
      type: "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html#labthings_fastapi.exceptions.InvocationCancelledError",
      title: "Cancelled",
      status: 409,
      detail: "cancelled on request",
    });
    expect(cancelled.output).toBeUndefined();
    expect(time(cancelled.timeEnded)).toBeGreaterThanOrEqual(time(cancelled.timeStarted));

    // Finished: 409 Problem Details.
    const again = await expectProblem(
      await fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" }),
      409,
    );
    expect(again.detail).toContain(created.id);
    const completed = await invoke(base, "lab/ping");
    await settled(server, completed.id);
    await expectProblem(
      await fetch(`${base}/action_invocations/${completed.id}`, { method: "DELETE" }),
      409,
    );
    expect((await statusOf(base, completed.id)).status).toBe("completed");

    // Unknown: 404 Problem Details, for DELETE and GET.
    const unknown = "00000000-0000-4000-8000-000000000000";
    await expectProblem(
      await fetch(`${base}/action_invocations/${unknown}`, { method: "DELETE" }),
      404,
    );
    await expectProblem(await fetch(`${base}/action_invocations/${unknown}`), 404);
  });

  it("cancels an invocation still waiting for its lock: it never starts", async () => {
    const gate = newGate();
    const holder = await invoke(base, "lab/hold", { gate });
    const waiting = await invoke(base, "lab/step");
    expect(waiting.status).toBe("pending");

    const cancel = await fetch(`${base}/action_invocations/${waiting.id}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    const cancelled = await statusOf(base, waiting.id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.timeStarted).toBeUndefined();
    expect((await statusOf(base, holder.id)).status).toBe("running");

    lab.gate(gate).open();
    await settled(server, holder.id);
    // The lock is free again for the next one.
    const next = await invoke(base, "lab/step");
    await settled(server, next.id);
    expect(await statusOf(base, next.id)).toMatchObject({ status: "completed", output: "stepped" });
  });

  it("reports a failing action as `failed` with Problem Details, the stack only in its log", async () => {
    const created = await invoke(base, "lab/boom");
    await settled(server, created.id);
    const failed = await statusOf(base, created.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ title: "TypeError", detail: "boom", status: 500 });
    expect(failed.error!.type).toEqual(expect.any(String));
    expect(JSON.stringify(failed.error)).not.toContain(" at ");
    expect(failed.output).toBeUndefined();
    const record = failed.log.find((r) => r.level === "error");
    expect(record, JSON.stringify(failed.log)).toBeDefined();
    expect(record!.message).toContain("TypeError: boom");
    expect(record!.message).toMatch(/\n\s+at /);

    // The server is fine.
    expect((await fetch(`${base}/lab/`)).status).toBe(200);
    const next = await invoke(base, "lab/ping");
    await settled(server, next.id);
    expect(await statusOf(base, next.id)).toMatchObject({ status: "completed", output: "pong" });
  });

  it("fails an invocation whose output breaks its schema, saying so", async () => {
    const created = await invoke(base, "lab/badOutput");
    await settled(server, created.id);
    const failed = await statusOf(base, created.id);
    expect(failed.status).toBe("failed");
    expect(failed.output).toBeUndefined();
    expect(failed.error!.detail).toMatch(/schema/);
    expect(failed.error!.detail).toContain("/badOutput/value");
    expect(failed.error!.status).toBe(500);
  });

  it("answers synchronous actions with 200 and the output, 204 without one, Problem Details on failure", async () => {
    const sum = await postJson(`${base}/lab/add`, { a: 2, b: 3.5 });
    expect(sum.status).toBe(200);
    expect(sum.headers.get("content-type")).toMatch(/^application\/json/);
    expect(sum.headers.get("location")).toBeNull();
    expect(await sum.json()).toBe(5.5);

    const reset = await postJson(`${base}/lab/reset`);
    expect(reset.status).toBe(204);
    expect(await reset.text()).toBe("");

    const problem = await expectProblem(await postJson(`${base}/lab/explode`), 500);
    expect(problem.title).toBe("TypeError");
    expect(problem.detail).toBe("boom");
    expect(problem.instance).toMatch(/^\/action_invocations\/[0-9a-f-]+$/);

    await expectProblem(await postJson(`${base}/lab/add`, { a: 2 }), 400);
  });

  it("runs invocations of an action without a lock at the same time", async () => {
    const gate = newGate();
    const created = await Promise.all([1, 2, 3].map(() => invoke(base, "lab/wait", { gate })));
    const ids = created.map((s) => s.id);
    expect(new Set(ids).size).toBe(3);
    // All three running in one and the same listing.
    const all = await until(async () => {
      const list = await getJson<ActionStatus[]>(`${base}/action_invocations/`);
      const mine = list.filter((s) => ids.includes(s.id));
      return mine.every((s) => s.status === "running") ? mine : undefined;
    }, "three running invocations");
    expect(all).toHaveLength(3);

    lab.gate(gate).open();
    for (const id of ids) await settled(server, id);
    for (const id of ids) expect((await statusOf(base, id)).status).toBe("completed");
  });

  it("runs two actions sharing a lock one after the other; a locked property answers 409 meanwhile", async () => {
    const gate = newGate();
    const first = await invoke(base, "lab/hold", { gate });
    await pollStatus(base, first.id, (s) => s.status === "running", "hold to run");
    const second = await invoke(base, "lab/step");
    expect(second.status).toBe("pending");

    // The property shares the lock: 409 while it is held, nothing written.
    const refused = await expectProblem(await putJson(`${base}/lab/focusOffset`, 12), 409);
    expect(refused.detail).toContain("stage");
    expect(await getJson(`${base}/lab/focusOffset`)).toBe(0);

    // Still waiting, however often it is asked.
    for (let i = 0; i < 3; i++) {
      const waiting = await statusOf(base, second.id);
      expect(waiting.status).toBe("pending");
      expect(waiting.timeStarted).toBeUndefined();
    }

    lab.gate(gate).open();
    await settled(server, first.id);
    await settled(server, second.id);
    const a = await statusOf(base, first.id);
    const b = await statusOf(base, second.id);
    expect(a.status).toBe("completed");
    expect(b).toMatchObject({ status: "completed", output: "stepped" });
    expect(time(b.timeStarted)).toBeGreaterThanOrEqual(time(a.timeEnded));

    expect((await putJson(`${base}/lab/focusOffset`, 12)).status).toBe(204);
    expect(await getJson(`${base}/lab/focusOffset`)).toBe(12);
  });

  it("fails fast with 409 and no invocation when a lock with waitMs 0 is held", async () => {
    const gate = newGate();
    const first = await invoke(base, "lab/exclusive", { gate });
    await pollStatus(base, first.id, (s) => s.status === "running", "exclusive to run");
    const sizeBefore = server.invocations.size;

    const started = performance.now();
    const conflict = await expectProblem(
      await postJson(`${base}/lab/exclusive`, { gate: newGate() }),
      409,
    );
    expect(performance.now() - started).toBeLessThan(1000);
    expect(conflict.detail).toContain("'x'");
    // labthings-fastapi's GlobalLockBusyError URL: the problem is the same as that one.
    expect(conflict.type).toBe(LOCK_BUSY_TYPE);
    expect(server.invocations.size).toBe(sizeBefore);
    const list = await getJson<ActionStatus[]>(`${base}/lab/exclusive`);
    expect(list.map((s) => s.id)).toEqual([first.id]);

    lab.gate(gate).open();
    await settled(server, first.id);
    // Free again.
    const gate2 = newGate();
    const next = await invoke(base, "lab/exclusive", { gate: gate2 });
    lab.gate(gate2).open();
    await settled(server, next.id);
    expect((await statusOf(base, next.id)).status).toBe("completed");
  });

  it("fails an invocation that waited waitMs (200 ms) for its lock, with error status 409", async () => {
    const gate = newGate();
    const first = await invoke(base, "lab/patient", { gate });
    await pollStatus(base, first.id, (s) => s.status === "running", "patient to run");
    const second = await invoke(base, "lab/patient", { gate });
    expect(second.status).toBe("pending");

    await settled(server, second.id);
    const failed = await statusOf(base, second.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ status: 409, type: LOCK_BUSY_TYPE });
    expect(failed.error!.detail).toContain("200 ms");
    expect(failed.timeStarted).toBeUndefined();
    const waited = time(failed.timeEnded) - time(failed.timeRequested);
    expect(waited).toBeGreaterThanOrEqual(195);
    expect(waited).toBeLessThan(5000);
    // The holder was not disturbed.
    expect((await statusOf(base, first.id)).status).toBe("running");

    lab.gate(gate).open();
    await settled(server, first.id);
    expect((await statusOf(base, first.id)).status).toBe("completed");
  });

  it("serves a byte blob with Content-Type, Content-Length and Range", async () => {
    const created = await invoke(base, "lab/bytes");
    await settled(server, created.id);
    const done = await statusOf(base, created.id);
    expect(done.status).toBe("completed");
    const output = done.output as { href: string; mediaType: string; size: number };
    expect(output).toEqual({
      href: expect.stringMatching(/^\/blobs\/[A-Za-z0-9_-]{32}$/),
      mediaType: "application/octet-stream",
      media_type: "application/octet-stream",
      size: 1000,
    });
    const url = new URL(output.href, `${base}/`).href;

    // The invocation's `output` link serves the same bytes, Range included.
    const outputLink = done.links.find((link) => link.rel === "output");
    expect(outputLink).toEqual({ rel: "output", href: `/action_invocations/${created.id}/output` });
    const viaLink = await fetch(new URL(outputLink!.href, `${base}/`));
    expect(viaLink.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await viaLink.arrayBuffer()).equals(KNOWN_BYTES)).toBe(true);
    const linkPart = await fetch(new URL(outputLink!.href, `${base}/`), {
      headers: { range: "bytes=10-19" },
    });
    expect(linkPart.status).toBe(206);
    expect(linkPart.headers.get("content-range")).toBe("bytes 10-19/1000");
    expect(Buffer.from(await linkPart.arrayBuffer()).equals(KNOWN_BYTES.subarray(10, 20))).toBe(
      true,
    );

    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("application/octet-stream");
    expect(whole.headers.get("content-length")).toBe("1000");
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    expect(Buffer.from(await whole.arrayBuffer()).equals(KNOWN_BYTES)).toBe(true);

    const part = await fetch(url, { headers: { range: "bytes=10-19" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 10-19/1000");
    expect(part.headers.get("content-length")).toBe("10");
    expect(Buffer.from(await part.arrayBuffer()).equals(KNOWN_BYTES.subarray(10, 20))).toBe(true);

    const suffix = await fetch(url, { headers: { range: "bytes=-5" } });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get("content-range")).toBe("bytes 995-999/1000");
    expect(Buffer.from(await suffix.arrayBuffer()).equals(KNOWN_BYTES.subarray(995))).toBe(true);

    const open = await fetch(url, { headers: { range: "bytes=990-" } });
    expect(open.status).toBe(206);
    expect(open.headers.get("content-range")).toBe("bytes 990-999/1000");
    expect(Buffer.from(await open.arrayBuffer()).equals(KNOWN_BYTES.subarray(990))).toBe(true);

    const outside = await fetch(url, { headers: { range: "bytes=5000-" } });
    await expectProblem(outside, 416);
    expect(outside.headers.get("content-range")).toBe("bytes */1000");
  });

  it("an empty blob: the whole of it is nothing, and no range of it can be given", async () => {
    const created = await invoke(base, "lab/empty");
    await settled(server, created.id);
    const output = (await statusOf(base, created.id)).output as { href: string; size: number };
    expect(output.size).toBe(0);
    const url = new URL(output.href, `${base}/`).href;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBe(0);
    for (const range of ["bytes=-5", "bytes=0-", "bytes=0-0"]) {
      const part = await fetch(url, { headers: { range } });
      await expectProblem(part, 416);
      expect(part.headers.get("content-range"), range).toBe("bytes */0");
    }
  });

  it("serves a file blob the same way, having moved the action's temporary file", async () => {
    const created = await invoke(base, "lab/file");
    await settled(server, created.id);
    const done = await statusOf(base, created.id);
    expect(done.status, JSON.stringify(done)).toBe("completed");
    const output = done.output as { href: string; mediaType: string; size: number };
    expect(output).toEqual({
      href: expect.stringMatching(/^\/blobs\/[A-Za-z0-9_-]{32}$/),
      mediaType: "image/png",
      media_type: "image/png",
      size: FILE_BYTES.length,
    });
    const written = lab.tempFiles.at(-1)!;
    expect(existsSync(written)).toBe(false);
    await rm(join(written, ".."), { recursive: true, force: true });

    const url = new URL(output.href, `${base}/`).href;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("image/png");
    expect(whole.headers.get("content-length")).toBe(String(FILE_BYTES.length));
    expect(Buffer.from(await whole.arrayBuffer()).equals(FILE_BYTES)).toBe(true);

    const part = await fetch(url, { headers: { range: "bytes=10-19" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 10-19/${FILE_BYTES.length}`);
    expect(part.headers.get("content-length")).toBe("10");
    expect(Buffer.from(await part.arrayBuffer()).equals(FILE_BYTES.subarray(10, 20))).toBe(true);

    const suffix = await fetch(url, { headers: { range: "bytes=-5" } });
    expect(suffix.status).toBe(206);
    expect(Buffer.from(await suffix.arrayBuffer()).equals(FILE_BYTES.subarray(-5))).toBe(true);

    await expectProblem(await fetch(url, { headers: { range: "bytes=5000-" } }), 416);
  });

  it("never serves anything but a stored blob: traversal attempts and random ids are 404", async () => {
    // Make sure the store has a folder with a file in it.
    const created = await invoke(base, "lab/file");
    await settled(server, created.id);
    const packageJson = await readFile(new URL("../package.json", import.meta.url), "utf8");
    const random = "A".repeat(16) + "b_-9".repeat(4);
    expect(random).toHaveLength(32);
    for (const path of [
      "/blobs/..%2F..%2Fetc%2Fpasswd",
      "/blobs/../package.json",
      "/blobs/%2e%2e",
      "/blobs/%2e%2e%2fpackage.json",
      "/blobs/..%5c..%5cpackage.json",
      "/blobs/",
      `/blobs/${random}`,
    ]) {
      const response = await rawGet(base, path);
      const body = response.body.toString("utf8");
      expect(response.status, `${path}: ${body}`).toBe(404);
      expect(body).not.toContain("root:");
      expect(body).not.toContain(packageJson.slice(0, 40));
      expect(body).not.toContain('"dependencies"');
      expect(String(response.headers["content-type"])).toMatch(/^application\/problem\+json/);
    }
  });

  it("describes actions in the TD, and its forms work when followed", async () => {
    const td = await getJson<{
      base: string;
      actions: Record<
        string,
        {
          input?: Record<string, unknown>;
          output?: Record<string, unknown>;
          synchronous?: boolean;
          forms: { href: string; op: string[]; "htv:methodName"?: string }[];
        }
      >;
      forms: { href: string; op: string[]; "htv:methodName"?: string }[];
    }>(`${base}/lab/`);
    expect(td.base).toBe(`${base}/lab/`);

    const count = td.actions.count!;
    expect(count.input).toMatchObject({
      type: "object",
      properties: { steps: { type: "integer", minimum: 2, maximum: 100 } },
      required: expect.arrayContaining(["steps", "gate"]),
    });
    expect(count.output).toMatchObject({
      type: "object",
      properties: { counted: { type: "integer" } },
    });
    expect(td.actions.ping!.input).toBeUndefined();
    expect(td.actions.ping!.output).toMatchObject({ type: "string" });
    expect(td.actions.bytes!.output).toMatchObject({
      type: "object",
      properties: { href: { type: "string" }, size: { type: "integer" } },
    });

    const form = (name: string, op: string) => {
      const found = td.actions[name]!.forms.find((f) => f.op.includes(op));
      expect(found, `${name} ${op}`).toBeDefined();
      return found!;
    };
    expect(form("ping", "invokeaction")["htv:methodName"]).toBe("POST");
    expect(form("ping", "queryaction")["htv:methodName"]).toBe("GET");
    expect(form("ping", "cancelaction")["htv:methodName"]).toBe("DELETE");
    const queryAll = td.forms.find((f) => f.op.includes("queryallactions"));
    expect(queryAll).toBeDefined();
    expect(queryAll!["htv:methodName"] ?? "GET").toBe("GET");

    const resolve = (href: string, id?: string) =>
      new URL(id === undefined ? href : href.replace("{id}", id), td.base).href;

    // invokeaction → Location; queryaction with {id} → the status.
    const invoked = await fetch(resolve(form("ping", "invokeaction").href), { method: "POST" });
    expect(invoked.status).toBe(201);
    const { id } = (await invoked.json()) as ActionStatus;
    const queryUrl = resolve(form("ping", "queryaction").href, id);
    expect(queryUrl).toBe(new URL(invoked.headers.get("location")!, td.base).href);
    await settled(server, id);
    const queried = await fetch(queryUrl);
    expect(queried.status).toBe(200);
    expect(await queried.json()).toMatchObject({ id, status: "completed", output: "pong" });

    // cancelaction with {id}.
    const gate = newGate();
    const waiting = await fetch(resolve(form("wait", "invokeaction").href), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ gate }),
    });
    expect(waiting.status).toBe(201);
    const waitId = ((await waiting.json()) as ActionStatus).id;
    const cancelled = await fetch(resolve(form("wait", "cancelaction").href, waitId), {
      method: "DELETE",
    });
    expect(cancelled.status).toBe(204);
    expect((await statusOf(base, waitId)).status).toBe("cancelled");

    // queryallactions.
    const everything = await getJson<Record<string, ActionStatus[]>>(resolve(queryAll!.href));
    expect(everything.ping!.map((s) => s.id)).toContain(id);
    expect(everything.wait!.map((s) => s.id)).toContain(waitId);
    for (const [name, statuses] of Object.entries(everything)) {
      for (const status of statuses) expect(status.action).toBe(name);
    }
  });
});

// ─── retention ───────────────────────────────────────────────────────────────────────

describe("retention", () => {
  let served: Served | undefined;

  afterAll(async () => {
    await closeAlone(served);
  });

  it("forgets a finished invocation and its blob after actionRetentionMs", async () => {
    served = await serve({ actionRetentionMs: 300 });
    const { base, server, thing: lab } = served;
    const gate = newGate();
    const created = await invoke(base, "lab/blobAfter", { gate });
    // Not finished, so it cannot expire yet: hold the invocation itself.
    const invocation = server.invocations.get(created.id);
    lab.gate(gate).open();
    await within(invocation.settled, "blobAfter to settle");
    // Synchronously after settling (no timer can have run): both still held.
    expect(invocation.status).toBe("completed");
    expect(server.blobs.size).toBe(1);
    expect(server.invocations.size).toBe(1);
    const ended = invocation.timeEnded!.getTime();
    const blobUrl = new URL((invocation.output as { href: string }).href, `${base}/`).href;

    const goneAt = await until(async () => {
      const response = await fetch(`${base}/action_invocations/${created.id}`);
      if (response.status === 200) {
        await response.arrayBuffer();
        return undefined;
      }
      await expectProblem(response, 404);
      return Date.now();
    }, "the invocation to expire");
    // Never before its retention time.
    expect(goneAt - ended).toBeGreaterThanOrEqual(290);
    await expectProblem(await fetch(blobUrl), 404);
    expect(server.blobs.size).toBe(0);
    expect(server.invocations.size).toBe(0);
    expect(await getJson(`${base}/lab/bytes`)).toEqual([]);
  });

  it("a retention longer than a timer can wait (a month) keeps the invocation, with no timer storm", async () => {
    await closeAlone(served);
    served = await serve({ actionRetentionMs: 30 * 24 * 3600_000 });
    const { base, server } = served;
    // Node runs a timer of more than 2³¹ − 1 ms after 1 ms, with a TimeoutOverflowWarning:
    // the sweep used to re-arm itself every millisecond, warning each time.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const created = await invoke(base, "lab/ping");
      await settled(server, created.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(warnings).not.toContain("TimeoutOverflowWarning");
      expect((await statusOf(base, created.id)).status).toBe("completed");
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("maxRetainedInvocations", () => {
  let served: Served | undefined;

  afterAll(async () => {
    await closeAlone(served);
  });

  it("keeps only the newest finished invocations", async () => {
    served = await serve({ maxRetainedInvocations: 5 });
    const { base, server } = served;
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const created = await invoke(base, "lab/ping");
      await settled(server, created.id);
      ids.push(created.id);
    }
    const list = await getJson<ActionStatus[]>(`${base}/action_invocations/`);
    expect(list.map((s) => s.id)).toEqual(ids.slice(3).reverse());
    for (const status of list) expect(status.status).toBe("completed");
    for (const id of ids.slice(0, 3)) {
      await expectProblem(await fetch(`${base}/action_invocations/${id}`), 404);
    }
    expect(server.invocations.size).toBe(5);
  });

  it("counts only finished ones: a running invocation is never dropped", async () => {
    const { base, server, thing: lab } = served!;
    const gate = newGate();
    const running = await invoke(base, "lab/wait", { gate });
    for (let i = 0; i < 6; i++) {
      const created = await invoke(base, "lab/ping");
      await settled(server, created.id);
    }
    expect((await statusOf(base, running.id)).status).toBe("running");
    expect(server.invocations.size).toBe(6);
    lab.gate(gate).open();
    await settled(server, running.id);
    expect((await statusOf(base, running.id)).status).toBe("completed");
    expect(server.invocations.size).toBe(5);
  });
});

// ─── memory ──────────────────────────────────────────────────────────────────────────

/** `global.gc`, exposed at run time when the process was not started with --expose-gc. */
function exposeGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === "function") return existing;
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

describe("memory", () => {
  let served: Served | undefined;

  afterAll(async () => {
    await closeAlone(served);
  });

  it("holds nothing after 1000 invocations have expired", { timeout: 60_000 }, async () => {
    served = await serve({ actionRetentionMs: 200 });
    const { base, server } = served;
    const gc = exposeGc();
    const heap = () => {
      gc?.();
      gc?.();
      return process.memoryUsage().heapUsed;
    };
    // 32 KB of input each: 1000 leaked invocations would hold 32 MB.
    const pad = "x".repeat(32 * 1024);
    const { thing: lab } = served;
    /** `count` invocations, 8 clients at a time; resolves once every one has run. */
    const run = async (count: number) => {
      const before = lab.quickRuns;
      let next = 0;
      const client = async () => {
        while (next < count) {
          const i = next++;
          if (i % 10 === 0) await invoke(base, "lab/smallBlob");
          else await invoke(base, "lab/noop", { pad });
        }
      };
      await Promise.all(Array.from({ length: 8 }, client));
      await until(() => lab.quickRuns - before === count, `${count} invocations to run`);
      return lab.quickRuns - before;
    };
    const drained = () =>
      until(
        () => server.invocations.size === 0 && server.blobs.size === 0,
        "every invocation and blob to expire",
        WAIT_MS,
      );

    // Warm up (JIT, Fastify's caches), then measure.
    expect(await run(100)).toBe(100);
    await drained();
    const baseline = heap();

    expect(await run(1000)).toBe(1000);
    await drained();
    expect(server.invocations.size).toBe(0);
    expect(server.blobs.size).toBe(0);
    expect(await getJson(`${base}/action_invocations/`)).toEqual([]);
    const growth = heap() - baseline;
    if (gc) expect(growth, `heap grew by ${(growth / 1e6).toFixed(1)} MB`).toBeLessThan(20e6);
  });
});

// ─── shutdown ────────────────────────────────────────────────────────────────────────

/** Records the order of what happens at shutdown. */
class Worker extends Thing {
  readonly order: string[] = [];
  readonly gate = new Gate();

  @action()
  async work(_input: undefined, ctx: ActionContext) {
    ctx.signal.addEventListener("abort", () => this.order.push("signal"), { once: true });
    try {
      await ctx.sleep(60_000);
    } finally {
      this.order.push("finally");
    }
  }

  /** Ignores its signal: only the gate ends it. */
  @action()
  async stubborn() {
    await this.gate.wait();
    this.order.push("stubborn ended");
  }

  override async stop() {
    this.order.push("stop");
  }
}

describe("server.close() with running actions", () => {
  const servers: ThingServer[] = [];
  const workers: Worker[] = [];

  afterAll(async () => {
    for (const worker of workers) worker.gate.open();
    await Promise.all(servers.map((s) => within(s.close(), "server.close()")));
  });

  async function start(options: ThingServerOptions = {}) {
    const worker = new Worker();
    const server = new ThingServer([{ name: "worker", thing: worker }], { port: 0, ...options });
    servers.push(server);
    workers.push(worker);
    const base = await server.start();
    return { worker, server, base };
  }

  it("aborts a running action, lets its finally run, then stops the Thing", async () => {
    const { worker, server, base } = await start();
    const created = await invoke(base, "worker/work");
    await pollStatus(base, created.id, (s) => s.status === "running", "work to run");

    const report: ShutdownReport = await within(server.close(), "server.close()");
    expect(worker.order).toEqual(["signal", "finally", "stop"]);
    expect(report.abandonedInvocations).toEqual([]);
    expect(report.hungThings).toEqual([]);
    expect(report.failedThings).toEqual([]);
    expect(report.forced).toBe(false);
    expect(report.durationMs).toBeLessThan(2000);
    expect(server.invocations.get(created.id).status).toBe("cancelled");
  });

  it("reports an action that ignores its signal as abandoned", async () => {
    const { worker, server, base } = await start({ shutdownTimeoutMs: 800 });
    const created = await invoke(base, "worker/stubborn");
    await pollStatus(base, created.id, (s) => s.status === "running", "stubborn to run");

    const report = await within(server.close(), "server.close()");
    expect(report.abandonedInvocations).toEqual([`worker/stubborn (${created.id})`]);
    expect(report.durationMs).toBeLessThan(3000);
    expect(worker.order).toContain("stop");
    expect(worker.order).not.toContain("stubborn ended");
    expect(FINISHED.has(server.invocations.get(created.id).status)).toBe(false);

    // Once it does end, it ends as cancelled (its signal had fired).
    worker.gate.open();
    await settled(server, created.id);
    expect(server.invocations.get(created.id).status).toBe("cancelled");
  });
});
