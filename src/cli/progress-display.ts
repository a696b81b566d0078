/**
 * An action's progress on a terminal's stderr: on a TTY one bar redrawn in place with
 * the log lines printed above it; otherwise (a pipe, a log file, CI) one plain line per
 * change, so nothing is lost and nothing needs a terminal to read.
 */
import type { InvocationUpdate } from "../client/invocation-handle.js";

const BAR_WIDTH = 24;
/** Erase the current line and go to its start. */
const CLEAR_LINE = "\r\x1b[2K";

export class ProgressDisplay {
  readonly #out: NodeJS.WriteStream;
  readonly #label: string;
  readonly #tty: boolean;
  #status = "";
  #fraction: number | undefined;
  #message = "";
  #lastLine = "";
  #barShown = false;

  /**
   * @param out where to draw (stderr)
   * @param label names the invocation, e.g. `autofocus/run`
   *
   * @example
   * ```ts
   * const display = new ProgressDisplay(process.stderr, "stage/moveRelative");
   * await stage.invokeAction("moveRelative", { x: 500 }, { onProgress: (u) => display.update(u) });
   * ```
   */
  constructor(out: NodeJS.WriteStream, label: string) {
    this.#out = out;
    this.#label = label;
    this.#tty = out.isTTY === true;
  }

  update(update: InvocationUpdate): void {
    this.#status = update.status;
    if (update.fraction !== undefined) this.#fraction = update.fraction;
    if (update.message !== undefined) this.#message = update.message;
    for (const record of update.log) this.note(`${record.level ?? "info"}: ${record.message}`);
    this.#draw();
  }

  /** A line of its own (a log record, "cancelling…"), above the bar on a terminal. */
  note(text: string): void {
    const line = `  ${text}`;
    if (this.#tty) {
      this.#out.write(`${this.#barShown ? CLEAR_LINE : ""}${line}\n`);
      this.#barShown = false;
      this.#draw(true);
    } else {
      this.#out.write(`${line}\n`);
    }
  }

  /** Leave the terminal on a fresh line (the bar's last state stays visible). */
  end(): void {
    if (this.#tty && this.#barShown) this.#out.write("\n");
    this.#barShown = false;
  }

  #draw(force = false): void {
    const percent = this.#fraction === undefined ? "" : `${Math.round(this.#fraction * 100)} %`;
    if (this.#tty) {
      const filled = Math.round((this.#fraction ?? 0) * BAR_WIDTH);
      const bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
      const text = `${this.#label} ${bar} ${percent.padStart(5)} ${this.#status} ${this.#message}`;
      if (!force && text === this.#lastLine && this.#barShown) return;
      this.#lastLine = text;
      // A pseudo-terminal without a size reports 0 columns.
      const columns = this.#out.columns || 80;
      this.#out.write(`${CLEAR_LINE}${text.slice(0, Math.max(10, columns - 1))}`);
      this.#barShown = true;
      return;
    }
    const text = `${this.#label}: ${this.#status}${percent ? ` ${percent}` : ""}${this.#message ? ` ${this.#message}` : ""}`;
    if (text === this.#lastLine) return;
    this.#lastLine = text;
    this.#out.write(`${text}\n`);
  }
}
