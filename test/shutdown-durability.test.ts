/**
 * "Acknowledged means durable" on every way out of the real command line, and the order
 * of the shutdown sequence as clients see it:
 *
 * - two signals 2–30 ms apart right after a PUT was answered 204, with 50 MJPEG viewers,
 *   100 SSE responses and 20 websockets open (what users trained by the Python server's
 *   hangs do: Ctrl-C twice), 10 rounds: the setting is in the file every time;
 * - the deadline (a Thing whose stop() never returns): the exit is forced, the setting is
 *   in the file;
 * - watchers of a running invocation (SSE) see its final status, `cancelled`, before
 *   their stream ends;
 * - a request whose body trickles in does not hold shutdown: after about 1 s it gets 503
 *   and is cut, and the process exits 0.
 *
 * `npm test` builds first (the `pretest` script); run `npm run build` before running this
 * file on its own.
 */

import { readFile, writeFile } from "node:fs/promises";
import { get, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  assertBuilt,
  CAMERA,
  FRAMEWORK,
  killAll,
  listeningUrl,
  STAGE,
  startCli,
} from "./support/cli-process.js";
import { putJson } from "./support/json-http.js";
import { connectMjpeg, type MjpegTestClient } from "./support/mjpeg-parser.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { until, within } from "./support/within.js";

const ROUNDS = 10;
const MJPEG_VIEWERS = 50;
const SSE_CLIENTS = 100;
const WEBSOCKETS = 20;

const cleanups = new Set<() => void>();

beforeAll(assertBuilt);

afterEach(async () => {
  for (const cleanup of cleanups) cleanup();
  cleanups.clear();
  await killAll();
});

afterAll(removeTempDirs);

/** A config for the microscope with a small camera, settings in `dir`, no stream cap. */
async function microscopeConfig(dir: string, extra: Record<string, unknown> = {}) {
  const config = join(dir, "lab.json");
  await writeFile(
    config,
    JSON.stringify({
      things: {
        stage: { class: STAGE },
        camera: { class: CAMERA, options: { width: 160, height: 120, fps: 10 } },
        ...extra,
      },
      settingsDir: "settings",
      limits: { streamsPerClient: 0 },
    }),
  );
  return config;
}

function openSse(url: string): Promise<IncomingMessage> {
  return within(
    new Promise((resolve, reject) => {
      const req = get(url, { agent: false, headers: { accept: "text/event-stream" } });
      cleanups.add(() => req.destroy());
      req.once("error", reject);
      req.once("response", (response) => {
        response.on("error", () => {});
        response.resume();
        resolve(response);
      });
    }),
    `SSE ${url}`,
  );
}

function openWebSocket(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  cleanups.add(() => socket.terminate());
  socket.on("error", () => {});
  return within(
    new Promise((resolve, reject) => {
      socket.once("open", () => resolve(socket));
      socket.once("unexpected-response", () => reject(new Error(`websocket ${url} refused`)));
    }),
    `websocket ${url}`,
  );
}

describe("acknowledged settings survive every way out", () => {
  it(`a double Ctrl-C with ${MJPEG_VIEWERS} MJPEG + ${SSE_CLIENTS} SSE + ${WEBSOCKETS} websockets open: the setting is in the file, ${ROUNDS} rounds of ${ROUNDS}`, async () => {
    const dir = await tempDir("labthings-double-signal-");
    const config = await microscopeConfig(dir);
    const file = join(dir, "settings", "camera.json");
    const outcomes: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const cli = startCli(["--config", config, "--port", "0"]);
      const url = await listeningUrl(cli);
      const viewers: MjpegTestClient[] = await within(
        Promise.all(
          Array.from({ length: MJPEG_VIEWERS }, () => connectMjpeg(`${url}/camera/stream`)),
        ),
        "the MJPEG viewers",
      );
      for (const viewer of viewers) cleanups.add(() => viewer.destroy());
      await within(
        Promise.all([
          ...Array.from({ length: SSE_CLIENTS }, (_, i) =>
            openSse(`${url}/${i % 2 ? "stage/position" : "camera/properties"}`),
          ),
          ...Array.from({ length: WEBSOCKETS }, () =>
            openWebSocket(`${url.replace(/^http/, "ws")}/stage/ws`),
          ),
        ]),
        "the SSE and websocket clients",
      );
      const exposure = 20_000 + round * 111;
      expect((await putJson(`${url}/camera/exposureTime`, exposure)).status).toBe(204);
      // Acknowledged: now two signals, 2 to 30 ms apart.
      const gapMs = 2 + Math.round((28 * round) / (ROUNDS - 1));
      cli.signal("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, gapMs));
      if (cli.child.exitCode === null) cli.child.kill("SIGINT");
      const exit = await within(cli.closed, "the CLI to exit");
      const saved = JSON.parse(await readFile(file, "utf8")) as { exposureTime: number };
      outcomes.push(
        `round ${round}: gap ${gapMs} ms, exit ${exit.code ?? exit.signal}, saved ${saved.exposureTime}`,
      );
      // Never killed by the signal itself: a handler always ran (and saved).
      expect(exit.signal, outcomes.join("\n")).toBeNull();
      expect(saved.exposureTime, outcomes.join("\n")).toBe(exposure);
      expect(cli.lines.some((line) => /settings NOT saved/.test(String(line.msg)))).toBe(false);
      for (const cleanup of cleanups) cleanup();
      cleanups.clear();
    }
    console.log(outcomes.join("\n"));
  }, 120_000);

  it("the deadline: a stop() that never returns forces the exit, and the setting is in the file", async () => {
    const dir = await tempDir("labthings-deadline-settings-");
    const stuck = join(dir, "stuck.mjs");
    await writeFile(
      stuck,
      `import { Thing } from ${JSON.stringify(FRAMEWORK)};
export class Stuck extends Thing {
  static title = "Stuck";
  async stop() { await new Promise(() => {}); }
}
`,
    );
    const config = await microscopeConfig(dir, { stuck: `${stuck}#Stuck` });
    const cli = startCli(["--config", config, "--port", "0", "--shutdown-timeout", "600"]);
    const url = await listeningUrl(cli);
    expect((await putJson(`${url}/camera/exposureTime`, 33_333)).status).toBe(204);
    cli.signal("SIGTERM");
    const exit = await within(cli.closed, "the CLI to exit");
    expect(exit.code).toBe(1);
    const saved = JSON.parse(await readFile(join(dir, "settings", "camera.json"), "utf8"));
    expect(saved.exposureTime).toBe(33_333);
    expect(cli.lines.find((line) => line.msg === "shut down with problems")).toMatchObject({
      hungThings: ["stuck"],
      settingsSaved: true,
    });
  });
});

describe("the order clients see", () => {
  it("watchers of a running invocation get its final status (cancelled) before their stream ends", async () => {
    const dir = await tempDir("labthings-watchers-");
    const cli = startCli(["--config", await microscopeConfig(dir), "--port", "0"]);
    const url = await listeningUrl(cli);
    expect((await putJson(`${url}/stage/speed`, 1)).status).toBe(204); // a move of hours
    const move = await fetch(`${url}/stage/moveRelative`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x: 5000 }),
    });
    expect(move.status).toBe(201);
    const location = move.headers.get("location")!;
    await move.arrayBuffer();
    const watchers = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const response = await openSse(`${url}${location}`);
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          body += chunk;
        });
        const ended = new Promise<{ body: string; complete: boolean }>((resolve) =>
          response.once("close", () => resolve({ body, complete: response.complete })),
        );
        return { ended };
      }),
    );
    // Pages written for labthings-fastapi watch actions over the websocket instead.
    const pages = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const socket = await openWebSocket(`${url.replace(/^http/, "ws")}/stage/ws`);
        cleanups.add(() => socket.terminate());
        const messages: { messageType: string; data: Record<string, unknown> }[] = [];
        socket.on("message", (data) => messages.push(JSON.parse(String(data))));
        const closed = new Promise<number>((resolve) => socket.once("close", resolve));
        socket.send(
          JSON.stringify({ messageType: "addActionObservation", data: { moveRelative: true } }),
        );
        // Messages are handled in order: a position update proves the first one was too.
        socket.send(
          JSON.stringify({ messageType: "addPropertyObservation", data: { position: true } }),
        );
        await until(() => messages.length > 0, "the page's first message");
        return { messages, closed };
      }),
    );
    const viewer = await connectMjpeg(`${url}/camera/stream`);
    cleanups.add(() => viewer.destroy());
    await within(viewer.part(0), "a frame");
    cli.signal("SIGTERM");
    const ends = await within(
      Promise.all(watchers.map((watcher) => watcher.ended)),
      "every watcher's stream to end",
    );
    for (const page of pages) {
      expect(await within(page.closed, "the page's close frame")).toBe(1001);
      const statuses = page.messages
        .filter((m) => m.messageType === "actionStatus")
        .map((m) => m.data.status);
      expect(statuses.at(-1), JSON.stringify(page.messages.slice(-3))).toBe("cancelled");
    }
    for (const { body, complete } of ends) {
      expect(complete).toBe(true);
      const statuses = [...body.matchAll(/^data: (.*)$/gm)].map(
        (m) => (JSON.parse(m[1]!) as { status: string }).status,
      );
      expect(statuses.at(-1), body).toBe("cancelled");
    }
    const exit = await within(cli.closed, "the CLI to exit");
    expect(exit.code, cli.stderr()).toBe(0);
  });

  it("a request whose body trickles in gets about 1 s, then 503 and the end of its connection; exit 0", async () => {
    const dir = await tempDir("labthings-trickle-");
    const cli = startCli(["--config", await microscopeConfig(dir), "--port", "0"]);
    const url = await listeningUrl(cli);
    const port = Number(new URL(url).port);
    const socket = connect({ host: "127.0.0.1", port });
    cleanups.add(() => socket.destroy());
    let received = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      received += chunk;
    });
    socket.on("error", () => {});
    const closed = new Promise((resolve) => socket.once("close", resolve));
    await within(new Promise((resolve) => socket.once("connect", resolve)), "the connection");
    socket.write(
      "PUT /camera/exposureTime HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n1",
    );
    // One more byte every 300 ms: the whole body would take over a second more.
    const trickle = setInterval(() => socket.write("0"), 300);
    cleanups.add(() => clearInterval(trickle));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sentAt = cli.signal("SIGTERM");
    const exit = await within(cli.exited, "the CLI to exit");
    clearInterval(trickle);
    await within(closed, "the trickling connection to be closed");
    const elapsed = exit.at - sentAt;
    console.log(`SIGTERM → exit with a trickling request body: ${elapsed.toFixed(0)} ms`);
    expect(exit.code, cli.stderr()).toBe(0);
    expect(elapsed).toBeGreaterThan(900);
    expect(elapsed).toBeLessThan(2500);
    expect(received).toMatch(/^HTTP\/1\.1 503 /);
    expect(received).toContain("request body had not arrived");
    expect(cli.lines.find((line) => line.msg === "shut down cleanly")).toMatchObject({
      requestsCut: [expect.stringContaining("PUT /camera/exposureTime")],
    });
  });
});
