/**
 * SangaboardStage against an emulator of the board's firmware v1 (examples/), over a
 * socat pseudo-terminal pair: the same serialport path as a USB board. Moves are
 * cancellable actions with progress, cancelling stops the motors, position is observed,
 * the version is shown, and unplugging (killing socat) is survived.
 */
import { EventSource } from "eventsource";
import { afterEach, describe, expect, it } from "vitest";
import { SangaboardEmulator } from "../examples/sangaboard-emulator.js";
import { ThingServer } from "../src/index.js";
import { SangaboardStage } from "../src/instruments/index.js";
import { LogCapture } from "./support/log-capture.js";
import { pollUntil } from "./support/processes.js";
import { PtyPair } from "./support/pty-pair.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await removeTempDirs();
});

async function rig(stepDelayUs = 1000) {
  const pty = new PtyPair(await tempDir("sangaboard-"));
  await pty.plug();
  const board = new SangaboardEmulator({ path: pty.board, stepDelayUs });
  await board.start();
  const logs = new LogCapture("info");
  const stage = new SangaboardStage({
    port: pty.host,
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 200,
    pollIntervalMs: 50,
  });
  const server = new ThingServer([{ name: "stage", thing: stage }], {
    port: 0,
    logger: logs.logger,
  });
  const base = await server.start();
  cleanups.push(async () => {
    await within(server.close(), "the server to close");
    await board.stop();
    await pty.unplug();
  });
  const json = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${base}${path}`, init);
    return {
      status: response.status,
      body: (await response.json().catch(() => undefined)) as Record<string, unknown>,
    };
  };
  const post = (path: string, body: unknown) =>
    json(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const finished = (href: string) =>
    pollUntil(async () => {
      const { body } = await json(href);
      return ["completed", "failed", "cancelled"].includes(String(body.status)) ? body : undefined;
    }, `invocation ${href} to finish`);
  return { pty, board, stage, server, base, logs, json, post, finished };
}

describe("SangaboardStage", () => {
  it("connects through the power-up line: shows the version, board and step delay, turns blocking moves off", async () => {
    const { json, board } = await rig();
    const { body } = await json("/stage/properties");
    expect(body).toMatchObject({
      connected: true,
      version: "Sangaboard Firmware v1.0.4",
      board: "Sangaboard v0.5.5",
      stepDelay: 1000,
      position: { x: 0, y: 0, z: 0 },
      moving: false,
    });
    expect(board.received).toContain("blocking_moves false");
    expect(board.nonBlockingMoves).toBe(true);
  });

  it("moves relative and absolute with progress, and observers see the position change", async () => {
    const { base, post, finished, board } = await rig(1000);
    const events = new EventSource(`${base}/stage/position`);
    const seen: { x: number; y: number; z: number }[] = [];
    events.addEventListener("position", (event) => seen.push(JSON.parse(event.data)));
    cleanups.push(async () => events.close());

    const move = await post("/stage/moveRelative", { x: 400, z: -200 });
    expect(move.status).toBe(201);
    const done = await finished(String(move.body.href));
    expect(done.status).toBe("completed");
    expect(done.output).toEqual({ x: 400, y: 0, z: -200 });
    expect(board.position).toEqual([400, 0, -200]);
    expect(done.progress).toMatchObject({ fraction: 1 });
    await pollUntil(
      () => (seen.some((p) => p.x === 400) ? true : undefined),
      "the final position observed",
    );
    expect(
      seen.some((p) => p.x > 0 && p.x < 400),
      "positions during the move were observed",
    ).toBe(true);

    const absolute = await finished(
      String((await post("/stage/moveAbsolute", { y: 100 })).body.href),
    );
    expect(absolute.output).toEqual({ x: 400, y: 100, z: -200 });
  });

  it("zeroes the position where the stage is, and releases the motors", async () => {
    const { post, finished, board, json } = await rig(100);
    await finished(String((await post("/stage/moveRelative", { x: 30, y: -20 })).body.href));
    const zero = await finished(String((await post("/stage/zeroPosition", null)).body.href));
    expect(zero.output).toEqual({ x: 0, y: 0, z: 0 });
    expect(board.position).toEqual([0, 0, 0]);
    expect((await json("/stage/position")).body).toEqual({ x: 0, y: 0, z: 0 });
    const release = await finished(String((await post("/stage/releaseMotors", null)).body.href));
    expect(release.status).toBe("completed");
    expect(board.received).toContain("release");
  });

  it("cancelling a move stops the motors where they are", async () => {
    const { post, json, finished, board, base } = await rig(1000);
    const move = await post("/stage/moveRelative", { x: 5000 }); // 5 s at 1 ms a step
    await pollUntil(() => (board.moving ? true : undefined), "the board to move");
    await new Promise((r) => setTimeout(r, 300));
    const cancel = await fetch(`${base}${move.body.href}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    const done = await finished(String(move.body.href));
    expect(done.status).toBe("cancelled");
    expect(board.received).toContain("stop");
    expect(board.moving).toBe(false);
    const [x] = board.position;
    expect(x).toBeGreaterThan(0);
    expect(x).toBeLessThan(5000);
    const { body } = await json("/stage/position");
    expect(body).toEqual({ x, y: 0, z: 0 });
  });

  it("unplugged: connected false, moves refused with 503 naming the port; replugged: back by itself", async () => {
    const { pty, post, json, logs, board } = await rig();
    await pty.unplug();
    await pollUntil(
      async () => ((await json("/stage/connected")).body === (false as unknown) ? true : undefined),
      "connected: false",
    );
    const refused = await post("/stage/moveRelative", { x: 10 });
    expect(refused.status).toBe(503);
    expect(String(refused.body.detail)).toContain(pty.host);
    // A foreseen refusal: one warning with the reason, not an error with a stack per retry.
    const refusal = await logs.waitFor((l) => l.msg === "request refused", "the refusal logged");
    expect(refusal).toMatchObject({ level: 40, url: "/stage/moveRelative" });
    expect(String(refusal.reason)).toContain(pty.host);
    expect(logs.lines.filter((l) => l.level >= 50 && l.msg === "request failed")).toEqual([]);
    await logs.waitFor(
      (l) => String(l.msg).includes(`${pty.host} disconnected`),
      "a log line naming the port",
    );

    await pty.plug();
    await pollUntil(
      async () => ((await json("/stage/connected")).body === (true as unknown) ? true : undefined),
      "connected again",
      10_000,
    );
    const move = await post("/stage/moveRelative", { y: 25 });
    expect(move.status).toBe(201);
    expect(board.received.filter((c) => c === "blocking_moves false")).toHaveLength(2);
  });
});
