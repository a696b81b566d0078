/**
 * A pseudo-terminal pair made by socat (`pty,raw,echo=0` at both ends): `board` and
 * `host` are symlinks to the two ends, so a device and `serialport` talk over the same
 * kernel path as a USB serial adapter. `unplug()` kills socat (both ends vanish);
 * `plug()` starts it again on the same paths.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "./processes.js";

export class PtyPair {
  readonly board: string;
  readonly host: string;
  #socat: ChildProcess | undefined;

  constructor(dir: string) {
    this.board = join(dir, "board");
    this.host = join(dir, "host");
  }

  /** Start socat and wait until both ends exist. */
  async plug(): Promise<void> {
    if (this.#socat) throw new Error("already plugged in");
    const socat = spawn(
      "socat",
      ["-d", "-d", `pty,raw,echo=0,link=${this.board}`, `pty,raw,echo=0,link=${this.host}`],
      { stdio: "ignore" },
    );
    this.#socat = socat;
    await pollUntil(
      () => (existsSync(this.board) && existsSync(this.host) ? true : undefined),
      "socat's pseudo-terminals",
    );
  }

  /** Kill socat: both ends disappear, as when a cable is pulled. */
  async unplug(): Promise<void> {
    const socat = this.#socat;
    this.#socat = undefined;
    if (!socat || socat.exitCode !== null) return;
    const closed = new Promise((resolve) => socat.once("close", resolve));
    socat.kill("SIGKILL");
    await closed;
    await pollUntil(() => (existsSync(this.host) ? undefined : true), "the pty links to go").catch(
      () => {},
    );
  }
}
