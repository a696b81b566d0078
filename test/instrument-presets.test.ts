/**
 * The instruments through the built command line, as a user runs them: config files that
 * name `labthings-ts/instruments#…` from a folder outside the project, the presets in
 * examples/, and process hygiene: no ffmpeg is left after SIGTERM, nor a second after
 * the server is SIGKILLed.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, type Cli, killAll, listeningUrl, startCli } from "./support/cli-process.js";
import { childProcesses, isAlive, pollUntil } from "./support/processes.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const EXAMPLES = fileURLToPath(new URL("../examples/", import.meta.url));

beforeAll(assertBuilt);
afterEach(killAll);
afterAll(removeTempDirs);

/** A config in a fresh folder far from the project, with a lavfi camera. */
async function lavfiConfig(): Promise<string> {
  const dir = await tempDir("instrument-config-");
  const file = join(dir, "lab.json");
  await writeFile(
    file,
    JSON.stringify({
      things: {
        camera: {
          class: "labthings-ts/instruments#FfmpegCamera",
          options: { input: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"] },
        },
        stage: "labthings-ts/microscope#SimulatedStage",
        autofocus: "labthings-ts/microscope#Autofocus",
      },
      port: 0,
    }),
  );
  return file;
}

async function ffmpegOf(cli: Cli, base: string): Promise<number> {
  await pollUntil(
    async () => ((await (await fetch(`${base}/camera/connected`)).json()) ? true : undefined),
    "frames",
  );
  const [ffmpeg] = childProcesses(cli.child.pid!, "ffmpeg");
  expect(ffmpeg, "the server runs ffmpeg as its child").toBeDefined();
  return ffmpeg!.pid;
}

describe("instruments from a config file", () => {
  it("serves FfmpegCamera named as labthings-ts/instruments#FfmpegCamera from any folder; SIGTERM leaves no ffmpeg", async () => {
    const config = await lavfiConfig();
    const cli = startCli(["--config", config], { cwd: await tempDir("elsewhere-") });
    const base = await listeningUrl(cli);
    const td = (await (await fetch(`${base}/camera/`)).json()) as {
      links: { href: string }[];
      actions: object;
    };
    expect(td.links.map((l) => l.href)).toEqual(expect.arrayContaining(["stream", "preview"]));
    expect(Object.keys(td.actions)).toContain("capture");
    const pid = await ffmpegOf(cli, base);
    cli.signal("SIGTERM");
    const exit = await within(cli.closed, "the server to exit");
    expect(exit.code).toBe(0);
    expect(isAlive(pid), "ffmpeg is gone when the server has exited").toBe(false);
  });

  it("leaves no orphan ffmpeg a second after the server is SIGKILLed, even a hung one", async () => {
    const cli = startCli(["--config", await lavfiConfig()]);
    const base = await listeningUrl(cli);
    const pid = await ffmpegOf(cli, base);
    // Stopped, it writes nothing, so it would never die of a broken pipe: only the
    // kernel's parent-death signal can end it once the server is gone.
    process.kill(pid, "SIGSTOP");
    cli.signal("SIGKILL");
    await within(cli.closed, "the server to die");
    await new Promise((r) => setTimeout(r, 1000));
    expect(isAlive(pid), "no orphan ffmpeg a second later").toBe(false);
  });

  it("examples/webcam.json starts without a webcam: the camera says why, stage and autofocus are served", async () => {
    const cli = startCli(["--config", join(EXAMPLES, "webcam.json"), "--port", "0"], {
      cwd: await tempDir("webcam-"),
    });
    const base = await listeningUrl(cli);
    const lost = await cli.waitForLog(
      (l) => /camera source \/dev\/video0 lost/.test(String(l.msg)),
      "the camera's fault",
    );
    expect(String(lost.msg)).toContain("/dev/video0");
    expect(await (await fetch(`${base}/camera/connected`)).json()).toBe(false);
    const snapshot = await fetch(`${base}/camera/stream/snapshot`);
    expect(snapshot.status).toBe(503);
    expect(((await snapshot.json()) as { detail: string }).detail).toContain("/dev/video0");
    expect((await fetch(`${base}/stage/position`)).status).toBe(200);
    expect((await fetch(`${base}/autofocus/`)).status).toBe(200);
  });

  it("examples/openflexure.json names the Pi camera and the Sangaboard; off a Pi it says what is missing", async () => {
    const cli = startCli(["--config", join(EXAMPLES, "openflexure.json"), "--port", "0"], {
      cwd: await tempDir("ofm-"),
    });
    const failed = await cli.waitForLog(
      (l) => /Thing 'camera' failed to start/.test(String(l.msg)),
      "the camera refused",
    );
    expect(String(failed.msg)).toContain("'rpicam-vid' is not installed");
    const base = await listeningUrl(cli);
    const stage = await fetch(`${base}/stage/connected`);
    expect(await stage.json()).toBe(false);
    const move = await fetch(`${base}/stage/moveRelative`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"x":1}',
    });
    expect(move.status).toBe(503);
    expect(((await move.json()) as { detail: string }).detail).toContain("/dev/ttyACM0");
  });
});
