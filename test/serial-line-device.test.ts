/**
 * The serial building block on a real pseudo-terminal pair (socat): the test plays the
 * instrument on the other end with its own serialport, scripting its replies. Commands
 * never interleave, each has a timeout and can be aborted, stray lines are never taken
 * for replies, and the device reconnects when the port disappears and comes back.
 */
import { ReadlineParser } from "@serialport/parser-readline";
import { SerialPort } from "serialport";
import { afterEach, describe, expect, it } from "vitest";
import { SyringePump } from "../docs/examples/syringe-pump.js";
import { ThingServer } from "../src/index.js";
import {
  DeviceError,
  SerialLineDevice,
  type SerialLineDeviceOptions,
  SerialTimeoutError,
} from "../src/instruments/index.js";
import { LogCapture } from "./support/log-capture.js";
import { pollUntil } from "./support/processes.js";
import { PtyPair } from "./support/pty-pair.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";

/** The instrument end: records what it receives, answers with `reply(line)` (undefined: silence). */
class ScriptedInstrument {
  readonly received: string[] = [];
  #port: SerialPort | undefined;
  constructor(
    readonly path: string,
    public reply: (line: string) => string | undefined,
  ) {}
  async open(): Promise<void> {
    const port = new SerialPort({ path: this.path, baudRate: 115200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    port.on("error", () => {});
    port.pipe(new ReadlineParser({ delimiter: "\n" })).on("data", (line: string) => {
      this.received.push(line);
      const answer = this.reply(line);
      if (answer !== undefined) port.write(answer);
    });
    this.#port = port;
  }
  write(text: string): void {
    this.#port?.write(text);
  }
  async close(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await removeTempDirs();
});

async function rig(
  reply: (line: string) => string | undefined,
  options: Partial<SerialLineDeviceOptions> = {},
) {
  const pty = new PtyPair(await tempDir("serial-"));
  await pty.plug();
  const instrument = new ScriptedInstrument(pty.board, reply);
  await instrument.open();
  const logs = new LogCapture("debug");
  const device = new SerialLineDevice({
    path: pty.host,
    timeoutMs: 1000,
    logger: logs.logger,
    ...options,
  });
  cleanups.push(async () => {
    await device.close();
    await instrument.close();
    await pty.unplug();
  });
  return { pty, instrument, device, logs };
}

describe("SerialLineDevice", () => {
  it("sends one command at a time and gives each caller its own reply", async () => {
    // A slow instrument: answers each command 5 ms later, with the command echoed back.
    const { device, instrument } = await rig(() => undefined);
    instrument.reply = (line) => {
      setTimeout(() => instrument.write(`re:${line}\r\n`), 5);
      return undefined;
    };
    await device.open();
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => device.query(`cmd ${i}`)),
    );
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => `re:cmd ${i}`));
    expect(instrument.received).toEqual(Array.from({ length: 20 }, (_, i) => `cmd ${i}`));
  });

  it("drops unsolicited lines and skips replies that are not the one expected", async () => {
    const { device, instrument, logs } = await rig((line) =>
      line === "p?" ? "stopped\r\n12 34 56\r\n" : "ok\r\n",
    );
    await device.open();
    instrument.write("Board booting...\r\nSangaboard Firmware v1.0.4\r\n");
    await logs.waitFor(
      (l) => l.msg === "unsolicited line dropped" && l.line === "Sangaboard Firmware v1.0.4",
      "the banner dropped",
    );
    expect(await device.query("p?", { expect: /^-?\d+ -?\d+ -?\d+$/ })).toBe("12 34 56");
    expect(await device.query("anything")).toBe("ok");
  });

  it("times out a command that gets no reply, and rejects an error reply", async () => {
    const answer = (line: string) =>
      line === "silent"
        ? undefined
        : line === "bad"
          ? "Type 'help' for a list of commands.\r\n"
          : "fine\r\n";
    const { device } = await rig(answer, { errorReply: /^Type 'help'/ });
    await device.open();
    const started = performance.now();
    await expect(device.query("silent", { timeoutMs: 300 })).rejects.toBeInstanceOf(
      SerialTimeoutError,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    await expect(device.query("bad")).rejects.toBeInstanceOf(DeviceError);
    expect(await device.query("next")).toBe("fine");
  });

  it("honours AbortSignal: a queued command is never sent; an aborted one's late reply is not the next one's", async () => {
    const { device, instrument } = await rig(() => undefined);
    instrument.reply = (line) => {
      setTimeout(() => instrument.write(`re:${line}\r\n`), line === "slow" ? 200 : 5);
      return undefined;
    };
    await device.open();
    const slowAbort = new AbortController();
    const queuedAbort = new AbortController();
    const slow = device.query("slow", { signal: slowAbort.signal });
    const queued = device.query("never sent", { signal: queuedAbort.signal });
    const after = device.query("after");
    queuedAbort.abort(new Error("changed my mind"));
    await expect(queued).rejects.toThrow("changed my mind");
    setTimeout(() => slowAbort.abort(new Error("cancelled")), 50);
    await expect(slow).rejects.toThrow("cancelled");
    expect(await after).toBe("re:after");
    expect(instrument.received).toEqual(["slow", "after"]);
  });

  it("reports an unplugged port (503 naming it), and reconnects by itself when it returns", async () => {
    const statuses: boolean[] = [];
    let handshakes = 0;
    const { device, pty, instrument } = await rig((line) => `re:${line}\r\n`, {
      reconnectDelayMs: 50,
      onStatus: ({ connected }) => statuses.push(connected),
      onConnect: async (channel) => {
        handshakes += 1;
        expect(await channel.query("hello")).toBe("re:hello");
      },
    });
    await device.open();
    expect(device.connected).toBe(true);
    await instrument.close();
    await pty.unplug();
    await pollUntil(() => (device.connected ? undefined : true), "the device to notice");
    const refused = await device.query("p?").catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 503 });
    expect(String((refused as Error).message)).toContain(pty.host);

    await pty.plug();
    await instrument.open();
    await pollUntil(() => (device.connected ? true : undefined), "the device to reconnect");
    expect(await device.query("again")).toBe("re:again");
    // The handshake ran again on reconnection. A reopen can come before the instrument's
    // end is open again: its handshake gets no answer, fails, is told, and is retried.
    expect(handshakes).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((connected, i) => connected !== statuses[i - 1])).toEqual([
      true,
      false,
      true,
    ]);
  });
});

describe("the serial Thing of docs/instruments.md (docs/examples/syringe-pump.ts)", () => {
  it("reads its rate at connection, dispenses until the pump is idle, and a cancel sends STP", async () => {
    let polls = 0;
    const { pty, instrument } = await rig(() => undefined);
    instrument.reply = (line) => {
      if (line === "RAT?") return "12.5\r\n";
      if (line === "STA?") return (polls++ < 2 ? "RUN" : "IDLE") + "\r\n";
      return "OK\r\n";
    };
    const server = new ThingServer([{ name: "pump", thing: new SyringePump({ port: pty.host }) }], {
      port: 0,
    });
    const base = await server.start();
    cleanups.push(() => server.close().then(() => undefined));
    expect(await (await fetch(`${base}/pump/rate`)).json()).toBe(12.5);
    const invoke = async () => {
      const post = await fetch(`${base}/pump/dispense`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"ml": 2}',
      });
      return post.headers.get("location")!;
    };
    const status = (href: string) =>
      pollUntil(async () => {
        const s = (await (await fetch(`${base}${href}`)).json()) as { status: string };
        return ["completed", "failed", "cancelled"].includes(s.status) ? s.status : undefined;
      }, "the dispense to end");
    expect(await status(await invoke())).toBe("completed");
    expect(instrument.received).toEqual(["RAT?", "VOL 2", "RUN", "STA?", "STA?", "STA?"]);

    polls = Number.NEGATIVE_INFINITY; // runs until stopped
    const href = await invoke();
    await pollUntil(
      () => (instrument.received.filter((l) => l === "STA?").length > 4 ? true : undefined),
      "it to run",
    );
    expect((await fetch(`${base}${href}`, { method: "DELETE" })).status).toBe(204);
    expect(await status(href)).toBe("cancelled");
    expect(instrument.received.at(-1)).toBe("STP");
  });
});
