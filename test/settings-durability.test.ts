/**
 * Settings on disks and in files that misbehave, against a real server and real files:
 *
 * - a read-only folder (a tmpfs remounted `ro`: chmod would not stop root) and a full
 *   disk (a 64 KiB tmpfs, filled): the PUT is still answered 204, the failed save is
 *   logged with the Thing, the file and the system error, retried with a growing pause,
 *   shown by `GET /settings/` for as long as it lasts, and saved once the disk is back;
 *   a shutdown with a value not on disk reports `settingsSaved: false`, names the value in
 *   an error line and exits 1;
 * - a settings file with `__proto__` (kept as data, written back), a UTF-8 byte-order
 *   mark (read), or a folder in its place (a clear error naming the file).
 *
 * The tmpfs tests need root (CI is root) and skip with the reason where mounting fails.
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ThingLifecycleError, ThingServer } from "../src/index.js";
import { launchChromium } from "./support/chromium.js";
import {
  assertBuilt,
  CAMERA,
  killAll,
  listeningUrl,
  STAGE,
  startCli,
} from "./support/cli-process.js";
import { putJson } from "./support/json-http.js";
import { LogCapture, type LogLine } from "./support/log-capture.js";
import { TunedStage } from "./support/settings-things.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { mountTmpfs, unmountAll } from "./support/tmpfs.js";
import { within } from "./support/within.js";

const open = new Set<ThingServer>();

afterEach(async () => {
  await Promise.all([...open].map((server) => within(server.close(), "a server to close")));
  open.clear();
  await killAll();
  unmountAll();
});

afterAll(removeTempDirs);

async function serve(settingsDir: string, logs?: LogCapture) {
  const stage = new TunedStage();
  const server = new ThingServer([{ name: "stage", thing: stage }], {
    port: 0,
    settingsDir,
    logger: logs?.logger,
  });
  open.add(server);
  const url = await within(server.start(), "the server to start");
  return { server, stage, url };
}

interface SettingsReport {
  saved: boolean;
  things: Record<
    string,
    {
      file: string;
      saved: boolean;
      unsaved: string[];
      error?: { code?: string; message: string };
      failedAttempts?: number;
      nextAttempt?: string;
    }
  >;
}

const settingsReport = async (url: string) =>
  (await (await fetch(`${url}/settings/`)).json()) as SettingsReport;

const failedSave = (attempt: number) => (line: LogLine) =>
  /^could not save settings of 'stage'/.test(line.msg) && line.attempt === attempt;

describe("a disk that fails", () => {
  it("read-only folder: 204, the failure logged and shown while it lasts (resource and dashboard), retried, saved once writable", async (context) => {
    const disk = await mountTmpfs("1m");
    if (typeof disk === "string") return context.skip(disk);
    const logs = new LogCapture("info");
    const { url } = await serve(disk.dir, logs);
    const file = join(disk.dir, "stage.json");
    expect((await putJson(`${url}/stage/speed`, 1111)).status).toBe(204);
    await within(
      (async () => {
        while (!(await settingsReport(url)).saved) await new Promise((r) => setTimeout(r, 20));
      })(),
      "the first change to be saved",
    );
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ speed: 1111 });

    // The dashboard, open on the microscope's page, warns while saves fail.
    const browser = await within(launchChromium(), "Chromium");
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/`);
      await page.locator('[data-thing="stage"]').waitFor({ timeout: 20_000 });
      const alert = page.locator(".settings-alert");
      expect(await alert.isHidden()).toBe(true);

      disk.readOnly(true);
      expect((await putJson(`${url}/stage/speed`, 2222)).status).toBe(204);
      const failure = await logs.waitFor(failedSave(1), "the failed save in the log");
      expect(failure).toMatchObject({ thing: "stage", file, code: "EROFS", unsaved: ["speed"] });
      expect(failure.msg).toContain(file);
      expect(failure.msg).toMatch(/read-only file system/);
      const during = await settingsReport(url);
      expect(during.saved).toBe(false);
      expect(during.things.stage).toMatchObject({
        file,
        saved: false,
        unsaved: ["speed"],
        error: { code: "EROFS" },
        failedAttempts: expect.any(Number),
      });
      expect(Date.parse(during.things.stage!.nextAttempt!)).toBeGreaterThan(Date.now() - 1000);
      // Tried again, after a longer pause.
      const second = await logs.waitFor(failedSave(2), "a second attempt");
      expect(Number(second.retryInMs)).toBeGreaterThan(Number(failure.retryInMs));
      await expect
        .poll(() => alert.textContent(), { timeout: 20_000 })
        .toMatch(/^Settings of stage are NOT saved to .*stage\.json: EROFS: read-only file system/);
      expect(await alert.getAttribute("role")).toBe("alert");

      disk.readOnly(false);
      await logs.waitFor(
        (line) => /^settings of 'stage' saved to .* after \d+ failed attempts$/.test(line.msg),
        "the save once the folder is writable",
      );
      expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ speed: 2222 });
      expect(await settingsReport(url)).toMatchObject({
        saved: true,
        things: { stage: { saved: true, unsaved: [] } },
      });
      await expect.poll(() => alert.isHidden(), { timeout: 20_000 }).toBe(true);
    } finally {
      await within(browser.close(), "Chromium to close");
    }
  });

  it("full disk: shutdown says settingsSaved false, names the lost value in an error line, exits 1", async (context) => {
    assertBuilt();
    const disk = await mountTmpfs("64k");
    if (typeof disk === "string") return context.skip(disk);
    const config = join(await tempDir("labthings-full-disk-"), "lab.json");
    await writeFile(
      config,
      JSON.stringify({
        things: {
          stage: { class: STAGE },
          camera: { class: CAMERA, options: { width: 64, height: 48, fps: 5 } },
        },
        settingsDir: disk.dir,
      }),
    );
    const cli = startCli(["--config", config, "--port", "0"]);
    const url = await listeningUrl(cli);
    disk.fill();
    expect((await putJson(`${url}/camera/exposureTime`, 20_000)).status).toBe(204);
    const failure = await cli.waitForLog(
      (line) => /^could not save settings of 'camera'/.test(String(line.msg)),
      "the failed save",
    );
    expect(failure).toMatchObject({ code: "ENOSPC", file: join(disk.dir, "camera.json") });
    const status = (await (await fetch(`${url}/settings/`)).json()) as SettingsReport;
    expect(status.things.camera).toMatchObject({ saved: false, error: { code: "ENOSPC" } });

    cli.signal("SIGTERM");
    const exit = await within(cli.closed, "the CLI to exit");
    expect(exit.code).toBe(1);
    const lost = cli.lines.find((line) => /^settings NOT saved/.test(String(line.msg)));
    expect(lost?.msg).toContain("camera.exposureTime = 20000");
    expect(lost?.msg).toContain(join(disk.dir, "camera.json"));
    expect(lost?.msg).toMatch(/no space left on device/i);
    const summary = cli.lines.find((line) => line.msg === "shut down with problems");
    expect(summary).toMatchObject({
      settingsSaved: false,
      unsavedSettings: [expect.stringContaining("camera.exposureTime = 20000")],
    });
  });
});

describe("flushSync: what a second Ctrl-C runs before exiting at once", () => {
  it("writes a pending change before it returns, also while an asynchronous save is under way", async () => {
    const dir = await tempDir("labthings-settings-sync-");
    const { server, stage } = await serve(dir);
    const file = join(dir, "stage.json");
    const onDisk = () => JSON.parse(readFileSync(file, "utf8")) as { speed: number };
    stage.speed = 1234; // debounced: not written yet
    expect(server.settings.flushSync()).toEqual([]);
    expect(onDisk().speed).toBe(1234);

    stage.speed = 555;
    const saving = server.settings.flush(); // an asynchronous write, under way
    stage.speed = 777;
    expect(server.settings.flushSync()).toEqual([]);
    expect(onDisk().speed).toBe(777);
    await saving;
    expect(onDisk().speed).toBe(777);
  });

  it("on a read-only folder it names what is lost", async (context) => {
    const disk = await mountTmpfs("1m");
    if (typeof disk === "string") return context.skip(disk);
    const { server, stage } = await serve(disk.dir);
    disk.readOnly(true);
    stage.speed = 4321;
    expect(server.settings.flushSync()).toEqual([
      {
        thing: "stage",
        key: "speed",
        value: 4321,
        file: join(disk.dir, "stage.json"),
        error: expect.stringMatching(/^EROFS: read-only file system/),
      },
    ]);
    disk.readOnly(false);
  });
});

describe("settings files as people leave them", () => {
  it("a __proto__ key is kept as data and written back; nothing is polluted", async () => {
    const dir = await tempDir("labthings-settings-proto-");
    const file = join(dir, "stage.json");
    await writeFile(
      file,
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"bad": 1}}, "speed": 300}\n',
    );
    const logs = new LogCapture("warn");
    const { server, stage, url } = await serve(dir, logs);
    expect(stage.speed).toBe(300);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await logs.waitFor((line) => line.key === "__proto__", "the unknown key's warning");
    expect((await putJson(`${url}/stage/label`, "proto")).status).toBe(204);
    await within(server.close(), "close");
    open.delete(server);
    const text = await readFile(file, "utf8");
    expect(text).toContain('"__proto__": {');
    const written = JSON.parse(text) as Record<string, unknown>;
    expect(Object.hasOwn(written, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(written, "__proto__")?.value).toEqual({
      polluted: true,
    });
    expect(written.constructor).toEqual({ prototype: { bad: 1 } });
    expect(written.label).toBe("proto");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a UTF-8 byte-order mark (as Windows editors write) is read, not treated as corrupt", async () => {
    const dir = await tempDir("labthings-settings-bom-");
    await writeFile(
      join(dir, "stage.json"),
      `\uFEFF${JSON.stringify({ speed: 444, label: "bom" })}`,
    );
    const { stage } = await serve(dir);
    expect(stage.speed).toBe(444);
    expect(stage.label).toBe("bom");
  });

  it("a folder where the settings file should be: start fails naming the file", async () => {
    const dir = await tempDir("labthings-settings-eisdir-");
    await mkdir(join(dir, "stage.json"));
    const server = new ThingServer([{ name: "stage", thing: new TunedStage() }], {
      port: 0,
      settingsDir: dir,
    });
    const started = server.start();
    await expect(started).rejects.toThrow(ThingLifecycleError);
    await expect(started).rejects.toThrow(
      `cannot read its settings file ${join(dir, "stage.json")}: it is a folder`,
    );
    await server.close();
  });
});
