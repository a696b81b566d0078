/**
 * `@setting` persistence against real parts: a real ThingServer on 127.0.0.1 (port 0)
 * with `settingsDir` in a temporary folder, real files, real child processes. Restarts
 * keep every setting; corrupt files are moved aside and never overwritten; invalid values
 * fall back to defaults and unknown keys are kept; config `settings` / `lockedSettings`;
 * and files stay whole when the process is SIGKILLed in the middle of saving.
 */
import { access, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  ConfigError,
  InvalidInputError,
  observeProperties,
  type SettingsConfig,
  ThingServer,
} from "../src/index.js";
import { assertBuilt, FRAMEWORK, killAll, listeningUrl, startCli } from "./support/cli-process.js";
import { getJson, putJson } from "./support/json-http.js";
import { expectProblem } from "./support/problem.js";
import {
  BUSY_THING,
  runAndKill,
  runAndTerminate,
  SAMPLES,
  STATE_KEYS,
  writeBusyScript,
} from "./support/settings-crash.js";
import {
  DEFAULT_LABEL,
  DEFAULT_REGION,
  DEFAULT_SPEED,
  SETTING_KEYS,
  TunedStage,
} from "./support/settings-things.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

/** The folder's files but the TD id file the server also keeps there (thing-ids.test.ts). */
async function settingsFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name !== "thing-ids.labthings.json");
}

const open = new Set<ThingServer>();

/** A server with one `TunedStage` named `stage`, settings in `settingsDir`. */
async function startStage(
  settingsDir: string,
  settings?: SettingsConfig,
): Promise<{ server: ThingServer; stage: TunedStage; url: string }> {
  const stage = new TunedStage();
  const server = new ThingServer([{ name: "stage", thing: stage, settings }], {
    port: 0,
    settingsDir,
  });
  open.add(server);
  const url = await within(server.start(), "the server to start");
  return { server, stage, url };
}

async function close(server: ThingServer) {
  const report = await within(server.close(), "the server to close");
  open.delete(server);
  return report;
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, "utf8"));
}

afterEach(async () => {
  await Promise.all([...open].map((server) => close(server)));
  await killAll();
});

afterAll(removeTempDirs);

describe("restart", () => {
  it("keeps every setting changed over HTTP and in the Thing's code; the file is pretty JSON of exactly the settings", async () => {
    const dir = await tempDir("labthings-settings-restart-");
    const first = await startStage(dir);
    expect(await getJson(`${first.url}/stage/speed`)).toBe(DEFAULT_SPEED);
    expect((await putJson(`${first.url}/stage/speed`, 20000)).status).toBe(204);
    expect((await putJson(`${first.url}/stage/label`, "left stage")).status).toBe(204);
    // Out of limits: refused, and never saved.
    expect((await putJson(`${first.url}/stage/speed`, 20001)).status).toBe(400);
    expect((await putJson(`${first.url}/stage/position`, 42)).status).toBe(204);
    first.stage.calibrate(640);
    const report = await close(first.server);
    expect(report.settingsSaved).toBe(true);

    const file = join(dir, "stage.json");
    const text = await readFile(file, "utf8");
    const expected = { speed: 20000, region: { x: 5, y: 7, width: 640 }, label: "left stage" };
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    const saved = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(saved).sort()).toEqual(SETTING_KEYS);
    expect(saved).toEqual(expected);

    const second = await startStage(dir);
    expect(second.stage.speed).toBe(20000);
    expect(second.stage.region).toEqual(expected.region);
    expect(second.stage.label).toBe("left stage");
    expect(second.stage.position).toBe(0);
    expect(await getJson(`${second.url}/stage/properties`)).toMatchObject(expected);
  });

  it("a change is saved without a shutdown (debounced), before close()", async () => {
    const dir = await tempDir("labthings-settings-debounce-");
    const { stage } = await startStage(dir);
    stage.label = "saved while running";
    const file = join(dir, "stage.json");
    const deadline = Date.now() + 5000;
    let saved: Record<string, unknown> | undefined;
    // Polling a file: there is no event for "another component wrote a file".
    while (Date.now() < deadline) {
      saved = (await readJson(file).catch(() => undefined)) as typeof saved;
      if (saved?.label === "saved while running") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(saved).toEqual({
      speed: DEFAULT_SPEED,
      region: DEFAULT_REGION,
      label: "saved while running",
    });
  });

  it("with nothing changed, no file is written and the Thing has its defaults", async () => {
    const dir = await tempDir("labthings-settings-nochange-");
    const { server, stage } = await startStage(dir);
    expect(stage.speed).toBe(DEFAULT_SPEED);
    expect((await close(server)).settingsSaved).toBe(true);
    expect(await settingsFiles(dir)).toEqual([]);
  });
});

describe("object-valued settings", () => {
  it("updateProperty changes one key (or computes the value): observers hear it and it is saved", async () => {
    const dir = await tempDir("labthings-settings-update-");
    const first = await startStage(dir);
    const heard: unknown[] = [];
    observeProperties(first.stage, (name, value) => {
      if (name === "region") heard.push(value);
    });
    first.stage.widen(300);
    first.stage.shift(4);
    expect(heard).toEqual([
      { ...DEFAULT_REGION, width: 300 },
      { ...DEFAULT_REGION, x: 4, width: 300 },
    ]);
    expect(await getJson(`${first.url}/stage/region`)).toEqual({ x: 4, y: 0, width: 300 });
    // An update that breaks the schema names the key and changes nothing.
    expect(() => first.stage.widen(0)).toThrow(InvalidInputError);
    expect(() => first.stage.widen(0)).toThrow(/width/);
    expect(first.stage.region.width).toBe(300);
    expect(heard).toHaveLength(2);
    await close(first.server);
    expect(await readJson(join(dir, "stage.json"))).toMatchObject({
      region: { x: 4, y: 0, width: 300 },
    });
    const second = await startStage(dir);
    expect(second.stage.region).toEqual({ x: 4, y: 0, width: 300 });
  });

  it("an in-place change of a stored object throws instead of being silently lost", async () => {
    const dir = await tempDir("labthings-settings-frozen-");
    const { server, stage } = await startStage(dir);
    expect(() => stage.mutateInPlace(999)).toThrow(TypeError);
    expect(stage.region).toEqual(DEFAULT_REGION);
    // A value written over the network is frozen too, and the caller's object is not.
    const mine = { x: 1, y: 2, width: 3 };
    stage.region = mine;
    mine.width = 4;
    expect(stage.region.width).toBe(3);
    expect(Object.isFrozen(stage.region)).toBe(true);
    await close(server);
  });
});

describe("a corrupt settings file", () => {
  it.each([
    ["invalid JSON", '{"speed": 300, "label": "half'],
    ["a JSON array", '[{"speed": 300}]\n'],
    ["JSON null", "null"],
  ])(
    "(%s) is moved aside intact, the Thing starts from defaults, and the aside file is never overwritten",
    async (_name, content) => {
      const dir = await tempDir("labthings-settings-corrupt-");
      const file = join(dir, "stage.json");
      await writeFile(file, content);
      const { server, stage, url } = await startStage(dir);
      expect(stage.speed).toBe(DEFAULT_SPEED);
      expect(stage.region).toEqual(DEFAULT_REGION);
      expect(stage.label).toBe(DEFAULT_LABEL);

      const names = await settingsFiles(dir);
      expect(names).toHaveLength(1);
      const aside = names[0]!;
      expect(aside).toMatch(/^stage\.json\.corrupt-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
      expect(await readFile(join(dir, aside), "utf8")).toBe(content);

      expect((await putJson(`${url}/stage/speed`, 1234)).status).toBe(204);
      expect((await close(server)).settingsSaved).toBe(true);
      expect((await settingsFiles(dir)).sort()).toEqual([aside, "stage.json"].sort());
      expect(await readFile(join(dir, aside), "utf8")).toBe(content);
      expect(await readJson(file)).toEqual({
        speed: 1234,
        region: DEFAULT_REGION,
        label: DEFAULT_LABEL,
      });

      // The next start reads the new file and leaves the aside file alone.
      const again = await startStage(dir);
      expect(again.stage.speed).toBe(1234);
      await close(again.server);
      expect(await readFile(join(dir, aside), "utf8")).toBe(content);
    },
  );
});

describe("invalid values and unknown keys", () => {
  it("an invalid saved value falls back to its default; the other keys still load", async () => {
    const dir = await tempDir("labthings-settings-invalid-");
    const file = join(dir, "stage.json");
    await writeFile(
      file,
      JSON.stringify({ speed: 50000, region: { x: 1, y: 2, width: 3 }, label: "kept" }),
    );
    const { server, stage } = await startStage(dir);
    expect(stage.speed).toBe(DEFAULT_SPEED);
    expect(stage.region).toEqual({ x: 1, y: 2, width: 3 });
    expect(stage.label).toBe("kept");
    await close(server);

    // An object missing a key, a wrong type: each falls back alone.
    await writeFile(file, JSON.stringify({ speed: 10, region: { x: 1, y: 2 }, label: 17 }));
    const second = await startStage(dir);
    expect(second.stage.speed).toBe(10);
    expect(second.stage.region).toEqual(DEFAULT_REGION);
    expect(second.stage.label).toBe(DEFAULT_LABEL);
  });

  it("an unknown key is kept in the file after the next save", async () => {
    const dir = await tempDir("labthings-settings-unknown-");
    const file = join(dir, "stage.json");
    const retired = { focusOffset: [1, 2, 3], note: "from an older version" };
    await writeFile(file, JSON.stringify({ speed: 77, retiredSetting: retired }));
    const { server, stage, url } = await startStage(dir);
    expect(stage.speed).toBe(77);
    expect((await putJson(`${url}/stage/label`, "renamed")).status).toBe(204);
    await close(server);
    expect(await readJson(file)).toEqual({
      retiredSetting: retired,
      speed: 77,
      region: DEFAULT_REGION,
      label: "renamed",
    });
  });
});

describe("config: settings and lockedSettings", () => {
  it("`settings` gives an initial value used only when nothing is saved", async () => {
    const dir = await tempDir("labthings-settings-initial-");
    const config = { initial: { speed: 500, label: "from config" } };
    const first = await startStage(dir, config);
    expect(first.stage.speed).toBe(500);
    expect(first.stage.label).toBe("from config");
    expect((await putJson(`${first.url}/stage/speed`, 900)).status).toBe(204);
    await close(first.server);

    const second = await startStage(dir, config);
    expect(second.stage.speed).toBe(900);
    // Saved at the first close (every setting is written): the saved value wins.
    expect(second.stage.label).toBe("from config");
    await close(second.server);
    await writeFile(join(dir, "stage.json"), JSON.stringify({ speed: 900 }));
    const third = await startStage(dir, config);
    expect(third.stage.speed).toBe(900);
    expect(third.stage.label).toBe("from config");
  });

  it("`lockedSettings` forces a value: PUT answers 405 with Allow: GET, the TD says readOnly", async () => {
    const dir = await tempDir("labthings-settings-locked-");
    await writeFile(join(dir, "stage.json"), JSON.stringify({ speed: 900, label: "saved" }));
    const { server, stage, url } = await startStage(dir, { locked: { speed: 42 } });
    expect(stage.speed).toBe(42);
    expect(stage.label).toBe("saved");
    expect(await getJson(`${url}/stage/speed`)).toBe(42);

    const response = await putJson(`${url}/stage/speed`, 100);
    expect(response.headers.get("allow")).toBe("GET");
    await expectProblem(response, 405);
    expect(stage.speed).toBe(42);
    // The other settings stay writable.
    expect((await putJson(`${url}/stage/label`, "still writable")).status).toBe(204);

    const td = await getJson<{ properties: Record<string, { readOnly?: boolean }> }>(
      `${url}/stage/`,
    );
    expect(td.properties.speed?.readOnly).toBe(true);
    expect(td.properties.label?.readOnly).not.toBe(true);
    await close(server);
  });

  it("an unknown setting name is a ConfigError naming things.<name>.settings.<key>", async () => {
    const dir = await tempDir("labthings-settings-unknown-config-");
    for (const config of [{ initial: { sped: 1 } }, { locked: { position: 1 } }]) {
      const server = new ThingServer(
        [{ name: "stage", thing: new TunedStage(), settings: config }],
        { port: 0, settingsDir: dir },
      );
      open.add(server);
      const error = await within(server.start(), "start to fail").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      const key = Object.keys(config.initial ?? config.locked ?? {})[0];
      expect((error as ConfigError).key).toBe(`things.stage.settings.${key}`);
      expect((error as Error).message).toContain(`things.stage.settings.${key}`);
    }
  });

  it("a locked (or initial) value that breaks the schema is a ConfigError", async () => {
    const dir = await tempDir("labthings-settings-bad-locked-");
    for (const config of [
      { locked: { speed: 0 } },
      { locked: { region: { x: 1, y: 1 } } },
      { initial: { label: "" } },
    ]) {
      const server = new ThingServer(
        [{ name: "stage", thing: new TunedStage(), settings: config }],
        { port: 0, settingsDir: dir },
      );
      open.add(server);
      const error = await within(server.start(), "start to fail").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      const key = Object.keys(config)[0] === "locked" ? Object.keys(config.locked!)[0] : "label";
      expect((error as ConfigError).key).toBe(`things.stage.settings.${key}`);
    }
  });
});

describe("the CLI", () => {
  const tunedSource = `import { setting, Thing, Type } from ${JSON.stringify(FRAMEWORK)};

export class Tuned extends Thing {
  @setting({ schema: Type.Number({ minimum: 1, maximum: 20000 }) })
  accessor speed = 2000;

  @setting({ schema: Type.String({ minLength: 1 }) })
  accessor label = "unnamed";
}
`;

  it("saves under 'settings' next to the config file (not the cwd), with config settings and lockedSettings", async () => {
    assertBuilt();
    const configDir = await tempDir("labthings-settings-cli-config-");
    const cwd = await tempDir("labthings-settings-cli-cwd-");
    await writeFile(join(configDir, "tuned.mts"), tunedSource);
    const config = join(configDir, "lab.json");
    await writeFile(
      config,
      JSON.stringify({
        things: {
          stage: {
            class: "./tuned.mts#Tuned",
            settings: { speed: 500 },
            lockedSettings: { label: "fixed" },
          },
        },
      }),
    );
    const cli = startCli(["--config", config, "--port", "0"], { cwd });
    const url = await listeningUrl(cli);
    expect(await getJson(`${url}/stage/speed`)).toBe(500);
    await expectProblem(await putJson(`${url}/stage/label`, "other"), 405);
    expect((await putJson(`${url}/stage/speed`, 900)).status).toBe(204);
    cli.signal("SIGTERM");
    const exit = await within(cli.closed, "the CLI to exit");
    expect(exit.code, cli.stderr()).toBe(0);
    expect(await readJson(join(configDir, "settings", "stage.json"))).toEqual({
      speed: 900,
      label: "fixed",
    });
    await expect(access(join(cwd, "settings"))).rejects.toThrow();
  });

  it("the simulated microscope keeps its camera and stage settings in --settings-dir across restarts", async () => {
    assertBuilt();
    const dir = await tempDir("labthings-settings-microscope-");
    const settingsDir = join(dir, "saved");
    const first = startCli(["--port", "0", "--settings-dir", "saved"], { cwd: dir });
    const url = await listeningUrl(first);
    expect((await putJson(`${url}/camera/exposureTime`, 25_000)).status).toBe(204);
    expect((await putJson(`${url}/camera/colourGains`, { red: 2, blue: 1.5 })).status).toBe(204);
    expect((await putJson(`${url}/stage/speed`, 750)).status).toBe(204);
    first.signal("SIGTERM");
    expect((await within(first.closed, "the CLI to exit")).code, first.stderr()).toBe(0);
    expect(await readJson(join(settingsDir, "camera.json"))).toMatchObject({
      exposureTime: 25_000,
      colourGains: { red: 2, blue: 1.5 },
    });

    const second = startCli(["--port", "0", "--settings-dir", settingsDir]);
    const again = await listeningUrl(second);
    expect(await getJson(`${again}/camera/exposureTime`)).toBe(25_000);
    expect(await getJson(`${again}/camera/colourGains`)).toEqual({ red: 2, blue: 1.5 });
    expect(await getJson(`${again}/stage/speed`)).toBe(750);
  });

  it("an unknown setting in the config exits with code 2 naming things.<name>.settings.<key>", async () => {
    assertBuilt();
    const configDir = await tempDir("labthings-settings-cli-bad-");
    await writeFile(join(configDir, "tuned.mts"), tunedSource);
    const config = join(configDir, "lab.json");
    await writeFile(
      config,
      JSON.stringify({ things: { stage: { class: "./tuned.mts#Tuned", settings: { sped: 1 } } } }),
    );
    const cli = startCli(["--config", config, "--port", "0"], { cwd: configDir });
    const exit = await within(cli.closed, "the CLI to exit");
    expect(exit.code, cli.stderr()).toBe(2);
    expect(cli.stderr()).toContain("things.stage.settings.sped");
  });
});

describe("SIGTERM while saving", () => {
  it("a process.once('SIGTERM') app always closes, and the file holds the last value", {
    timeout: 60_000,
  }, async () => {
    assertBuilt();
    const root = await tempDir("labthings-settings-sigterm-");
    const script = await writeBusyScript(root);
    for (let run = 0; run < 12; run++) {
      const dir = join(root, `run-${run}`);
      await mkdir(dir);
      const outcome = await runAndTerminate(script, dir, 100 + Math.floor(Math.random() * 300));
      expect(outcome, `run ${run}`).toMatchObject({ code: 0, signal: null });
      const [, counter, saved] = outcome.closedLine?.split(" ") ?? [];
      expect(saved, `run ${run}: ${outcome.closedLine}`).toBe("true");
      const file = (await readJson(join(dir, `${BUSY_THING}.json`))) as {
        state: { counter: number };
      };
      expect(file.state.counter, `run ${run}`).toBe(Number(counter));
    }
  });
});

describe("crash safety", () => {
  /**
   * At most RUNS runs; more than MIN_RUNS only while BUDGET_MS lasts. The first MIN_RUNS
   * always run, however slow the machine: a loaded CI box takes longer, it does not fail.
   */
  const RUNS = 200;
  const MIN_RUNS = 50;
  const BUDGET_MS = 30_000;
  /** Children at a time: each spends most of its life waiting to be killed. */
  const PARALLEL = 4;

  it("SIGKILL at a random moment leaves no settings file or a whole one", {
    timeout: 240_000,
  }, async () => {
    assertBuilt();
    const root = await tempDir("labthings-settings-crash-");
    const script = await writeBusyScript(root);
    const began = performance.now();
    let runs = 0;
    let missing = 0;
    const counters: number[] = [];
    const failures: string[] = [];

    async function worker(): Promise<void> {
      while (runs < RUNS && (runs < MIN_RUNS || performance.now() - began < BUDGET_MS)) {
        const run = runs++;
        const dir = join(root, `run-${run}`);
        await mkdir(dir);
        const killAfter = 50 + Math.floor(Math.random() * 251);
        const exit = await runAndKill(script, dir, killAfter);
        expect(exit.signal, `run ${run}`).toBe("SIGKILL");
        const file = join(dir, `${BUSY_THING}.json`);
        let text: string;
        try {
          text = await readFile(file, "utf8");
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
          missing++;
          continue;
        }
        try {
          const saved = JSON.parse(text) as { state: Record<string, unknown> };
          expect(Object.keys(saved)).toEqual(["state"]);
          const state = saved.state;
          expect(Object.keys(state).sort()).toEqual(STATE_KEYS);
          const counter = state.counter as number;
          expect(Number.isInteger(counter)).toBe(true);
          expect(state.label).toBe(`value-${counter}-`.padEnd(4096, "x"));
          expect(state.samples).toEqual(
            Array.from({ length: SAMPLES }, (_, i) => counter * SAMPLES + i),
          );
          expect(state.nested).toEqual({ even: counter % 2 === 0, text: String(counter) });
          counters.push(counter);
        } catch (error) {
          failures.push(
            `run ${run} (killed after ${killAfter} ms): ${String(error)}\n${text.slice(0, 200)}`,
          );
        }
      }
    }

    await Promise.all(Array.from({ length: PARALLEL }, () => worker()));
    const seconds = ((performance.now() - began) / 1000).toFixed(1);
    const saved = counters.filter((c) => c > 0).length;
    console.log(
      `crash safety: ${runs} SIGKILLed children in ${seconds} s; ${missing} left no file, ` +
        `${counters.length} a whole file (${saved} with counter > 0, highest ${Math.max(0, ...counters)})`,
    );
    expect(failures).toEqual([]);
    expect(saved, "no run found a saved file with counter > 0").toBeGreaterThan(0);
  });
});
