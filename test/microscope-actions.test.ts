/**
 * The simulated microscope's actions over HTTP on a real server: stage moves (duration
 * from the speed, progress, cancellation that leaves the stage where it stopped, the
 * "stage" lock queueing a second move), camera capture as a JPEG blob carrying every
 * Thing's state in its EXIF ImageDescription, autofocus finding the focal plane, and
 * SIGTERM to the real command line during a long move.
 *
 * The CLI test runs `dist/`: run `npm run build` before running this file on its own.
 */
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimulatedStage } from "../examples/microscope/index.js";
import { type ActionStatus, observeProperties, ThingServer } from "../src/index.js";
import { invoke, pause, pollStatus, RFC3339, statusOf } from "./support/actions-http.js";
import { killAll, listeningUrl, startCli } from "./support/cli-process.js";
import { getJson, putJson } from "./support/json-http.js";
import { microscopeEntries, SMALL_CAMERA } from "./support/microscope.js";
import { expectProblem } from "./support/problem.js";
import { within } from "./support/within.js";

interface Position {
  x: number;
  y: number;
  z: number;
}

interface BlobReference {
  href: string;
  mediaType: string;
  size: number;
}

const FOCUS_Z = 1000;
const COARSE_STEP = 100;

describe("the simulated microscope's actions", () => {
  let server: ThingServer;
  let base: string;
  let stage: SimulatedStage;

  beforeAll(async () => {
    stage = new SimulatedStage();
    server = new ThingServer(microscopeEntries({ stage, camera: SMALL_CAMERA, autofocus: true }), {
      port: 0,
    });
    base = await server.start();
  });

  afterAll(async () => {
    const report = await within(server.close(), "server.close()");
    expect(report.abandonedInvocations).toEqual([]);
    expect(report.hungThings).toEqual([]);
  });

  const position = () => getJson<Position>(`${base}/stage/position`);

  /** Wait for the invocation to settle (its promise in the server), then GET its status. */
  async function finished(id: string, ms?: number): Promise<ActionStatus> {
    await within(server.invocations.get(id).settled, `invocation ${id} to settle`, ms);
    return statusOf(base, id);
  }

  /** Record every progress fraction the server sets on an invocation from now on. */
  function recordProgress(id: string): number[] {
    const fractions: number[] = [];
    server.invocations.get(id).onChange((invocation) => {
      const fraction = invocation.progress?.fraction;
      if (fraction !== undefined && fraction !== fractions.at(-1)) fractions.push(fraction);
    });
    return fractions;
  }

  function expectIncreasing(fractions: number[]): void {
    for (let i = 1; i < fractions.length; i++) {
      expect(fractions[i], `progress ${fractions.join(", ")}`).toBeGreaterThan(fractions[i - 1]!);
    }
  }

  it("moves x by 1000 steps at 2000 steps/s in about half a second, reporting progress", async () => {
    expect(await getJson(`${base}/stage/speed`)).toBe(2000);
    const from = await position();
    const started = performance.now();
    const created = await invoke(base, "stage/moveRelative", { x: 1000 });
    const fractions = recordProgress(created.id);

    const midway = await pollStatus(
      base,
      created.id,
      (s) =>
        s.status === "running" &&
        s.progress?.fraction !== undefined &&
        s.progress.fraction > 0 &&
        s.progress.fraction < 1,
      "the move to be under way",
    );
    expect(midway.progress!.message).toMatch(/^at x=-?\d+ y=-?\d+ z=-?\d+$/);

    const done = await finished(created.id);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThan(300);
    expect(elapsed).toBeLessThan(3000);
    expect(done.status).toBe("completed");
    const target = { x: from.x + 1000, y: from.y, z: from.z };
    expect(done.output).toEqual(target);
    expect(await position()).toEqual(target);
    const ran = Date.parse(done.timeEnded!) - Date.parse(done.timeStarted!);
    expect(done.timeStarted).toMatch(RFC3339);
    expect(ran).toBeGreaterThanOrEqual(300);
    expect(ran).toBeLessThan(3000);

    // Progress went up step by step, to 1.
    expect(fractions.length).toBeGreaterThanOrEqual(3);
    expectIncreasing(fractions);
    expect(fractions.at(-1)).toBe(1);
    expect(done.progress!.fraction).toBe(1);
  });

  it("stops where the stage is when a move is cancelled, and stays there", async () => {
    const from = await position();
    const created = await invoke(base, "stage/moveRelative", { x: 2000 });
    await pollStatus(
      base,
      created.id,
      (s) => s.status === "running" && (s.progress?.fraction ?? 0) >= 0.1,
      "the move to be a tenth of the way",
    );

    const cancel = await fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" });
    expect(cancel.status).toBe(204);
    const cancelled = await statusOf(base, created.id);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.output).toBeUndefined();

    const stopped = await position();
    expect(stopped.x).toBeGreaterThan(from.x);
    expect(stopped.x).toBeLessThan(from.x + 2000);
    expect(stopped.y).toBe(from.y);
    expect(stopped.z).toBe(from.z);

    // Nothing moves afterwards: no position change for a while (proving an absence
    // needs a wait; there is no event for "nothing happened").
    const changes: unknown[] = [];
    const stopObserving = observeProperties(stage, (name, value) => {
      if (name === "position") changes.push(value);
    });
    try {
      await pause(300);
    } finally {
      stopObserving();
    }
    expect(changes).toEqual([]);
    expect(await position()).toEqual(stopped);
    await expectProblem(
      await fetch(`${base}/action_invocations/${created.id}`, { method: "DELETE" }),
      409,
    );
  });

  it("queues a second move behind the first (the stage lock)", async () => {
    const from = await position();
    const first = await invoke(base, "stage/moveRelative", { y: 1000 });
    // The first holds the lock from the moment it was created: the second waits.
    const second = await invoke(base, "stage/moveRelative", { y: -400 });
    expect(second.status).toBe("pending");
    expect(second.timeStarted).toBeUndefined();

    const a = await finished(first.id);
    const b = await finished(second.id);
    expect(a).toMatchObject({ status: "completed", output: { ...from, y: from.y + 1000 } });
    expect(b).toMatchObject({ status: "completed", output: { ...from, y: from.y + 600 } });
    expect(Date.parse(b.timeStarted!)).toBeGreaterThanOrEqual(Date.parse(a.timeEnded!));
    expect(await position()).toEqual({ ...from, y: from.y + 600 });
  });

  it("captures a JPEG blob whose EXIF holds the stage position and camera settings", async () => {
    const moved = await invoke(base, "stage/moveAbsolute", { x: 1234, y: -567 });
    expect((await finished(moved.id)).status).toBe("completed");
    expect((await putJson(`${base}/camera/analogGain`, 2.5)).status).toBe(204);
    expect((await putJson(`${base}/camera/exposureTime`, 20_000)).status).toBe(204);
    const here = await position();
    expect(here).toMatchObject({ x: 1234, y: -567 });

    const created = await invoke(base, "camera/capture");
    const done = await finished(created.id, 20_000);
    expect(done.status, JSON.stringify(done)).toBe("completed");
    const output = done.output as BlobReference;
    expect(output).toEqual({
      href: expect.stringMatching(/^\/blobs\/[A-Za-z0-9_-]{32}$/),
      mediaType: "image/jpeg",
      media_type: "image/jpeg",
      size: expect.any(Number),
    });
    expect(done.log.some((r) => r.message.startsWith("captured 320×240"))).toBe(true);

    const url = new URL(output.href, `${base}/`).href;
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/jpeg");
    expect(response.headers.get("content-length")).toBe(String(output.size));
    const jpeg = Buffer.from(await response.arrayBuffer());
    expect(jpeg.length).toBe(output.size);

    const metadata = await sharp(jpeg).metadata();
    expect(metadata).toMatchObject({ format: "jpeg", width: 320, height: 240 });
    expect(metadata.exif).toBeInstanceOf(Buffer);
    const exif = metadata.exif!;
    const start = exif.indexOf('{"capturedAt"');
    expect(start, "the JSON in ImageDescription").toBeGreaterThanOrEqual(0);
    const end = exif.indexOf(0, start);
    const state = JSON.parse(exif.toString("utf8", start, end < 0 ? undefined : end)) as {
      capturedAt: string;
      things: {
        stage: { position: Position; speed: number };
        camera: {
          analogGain: number;
          exposureTime: number;
          resolution: { width: number; height: number };
        };
      };
    };
    expect(state.capturedAt).toMatch(RFC3339);
    expect(state.things.stage.position).toEqual(here);
    expect(state.things.stage.speed).toBe(2000);
    expect(state.things.camera).toMatchObject({
      analogGain: 2.5,
      exposureTime: 20_000,
      resolution: { width: 320, height: 240 },
    });

    // Range on the blob.
    const head = await fetch(url, { headers: { range: "bytes=0-1" } });
    expect(head.status).toBe(206);
    expect(head.headers.get("content-range")).toBe(`bytes 0-1/${output.size}`);
    expect([...Buffer.from(await head.arrayBuffer())]).toEqual([0xff, 0xd8]);
    const tail = await fetch(url, { headers: { range: "bytes=-2" } });
    expect(tail.status).toBe(206);
    expect([...Buffer.from(await tail.arrayBuffer())]).toEqual([0xff, 0xd9]);
    const middle = await fetch(url, { headers: { range: "bytes=100-199" } });
    expect(middle.status).toBe(206);
    expect(Buffer.from(await middle.arrayBuffer()).equals(jpeg.subarray(100, 200))).toBe(true);
  });

  it("focuses from z=0 onto the focal plane at z=1000", { timeout: 90_000 }, async () => {
    const home = await invoke(base, "stage/moveAbsolute", { x: 0, y: 0, z: 0 });
    expect((await finished(home.id)).status).toBe("completed");
    expect(await position()).toEqual({ x: 0, y: 0, z: 0 });

    const created = await invoke(base, "autofocus/run", {});
    const fractions = recordProgress(created.id);
    const done = await finished(created.id, 80_000);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const result = done.output as { z: number; sharpness: number; scores: unknown[] };
    // 31 coarse positions, 11 fine ones.
    expect(result.scores).toHaveLength(42);
    const final = await position();
    expect(final.z).toBe(result.z);
    expect(Math.abs(final.z - FOCUS_Z), `ended at z=${final.z}`).toBeLessThanOrEqual(COARSE_STEP);
    expect(Math.abs(final.z - FOCUS_Z), `ended at z=${final.z}`).toBeLessThanOrEqual(50);

    expect(fractions.length).toBeGreaterThanOrEqual(40);
    expectIncreasing(fractions);
    expect(fractions.at(-1)).toBe(1);
    expect(done.progress).toMatchObject({ fraction: 1 });
    expect(done.log.map((r) => r.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^coarse sweep: best z=/)]),
    );
  });
});

describe("SIGTERM to the real CLI during a long move", () => {
  afterEach(async () => {
    await killAll();
  });

  it("aborts the move and exits 0 at once, logging a clean shutdown", async () => {
    const cli = startCli(["--port", "0"]);
    const url = await listeningUrl(cli);
    const listening = cli.lines.find(
      (l) => typeof l.msg === "string" && l.msg.startsWith("listening"),
    );
    expect(listening!.things).toEqual(expect.arrayContaining(["stage", "camera"]));

    expect((await putJson(`${url}/stage/speed`, 100)).status).toBe(204);
    const created = await invoke(url, "stage/moveRelative", { x: 9000 });
    const running = await pollStatus(
      url,
      created.id,
      (s) => s.status === "running" && (s.progress?.fraction ?? 0) > 0,
      "the long move to be under way",
    );
    expect(running.progress!.fraction).toBeLessThan(0.5);

    const sent = performance.now();
    cli.child.kill("SIGTERM");
    const exit = await within(cli.closed, "the CLI to exit after SIGTERM", 10_000);
    expect(exit.code, cli.stderr()).toBe(0);
    expect(exit.at - sent).toBeLessThan(2000);

    const shuttingDown = cli.lines.find((l) => l.msg === "shutting down");
    expect(shuttingDown).toMatchObject({ signal: "SIGTERM" });
    const clean = cli.lines.find((l) => l.msg === "shut down cleanly");
    expect(clean, JSON.stringify(cli.lines)).toMatchObject({
      abandonedInvocations: [],
      hungThings: [],
      failedThings: [],
      forced: false,
    });
    expect(cli.lines.some((l) => l.msg === "shut down with problems")).toBe(false);
    expect(
      cli.lines.filter((l) => (l.level ?? 0) >= 50),
      "error lines",
    ).toEqual([]);
  });
});
