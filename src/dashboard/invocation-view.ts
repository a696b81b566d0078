/**
 * One action invocation on the page. While it runs: its status, a progress bar with the
 * action's message, the live log and a Cancel button. When it ends it collapses to one
 * line (a `<details>` summary) that says the result once — a summary sentence, the
 * output in short, the blob's name, or why it failed — and opens to the log, the full
 * output (JSON, or a blob's download link and picture) and the last progress message.
 */
import { InvocationCancelledError } from "../client/client-errors.js";
import type { InvocationHandle, InvocationUpdate } from "../client/invocation-handle.js";
import type { ThingClient } from "../client/thing-client.js";
import { errorText, formatValue, h, isPlainObject } from "./dom.js";
import type { JsonSchema } from "./schema-check.js";

/** Log lines kept on the page per invocation (the server keeps at most 200 too). */
const MAX_LOG_LINES = 200;
/** Longest output shown in the one-line summary; the whole output is inside. */
const SUMMARY_CHARS = 80;

/** A blob the action returned, as `{ href, mediaType, size }`. */
interface BlobReference {
  href: string;
  mediaType?: string;
  size?: number;
}

/** A downloaded blob, ready for the page: an object URL, a file name and its size. */
export interface DownloadedOutput {
  url: string;
  name: string;
  mediaType: string;
  size: number;
}

function blobReference(output: unknown, schema: JsonSchema | undefined): BlobReference | undefined {
  if (!isPlainObject(output) || typeof output.href !== "string") return undefined;
  const declared = typeof schema?.contentMediaType === "string";
  if (!declared && typeof output.mediaType !== "string") return undefined;
  return {
    href: output.href,
    mediaType:
      typeof output.mediaType === "string"
        ? output.mediaType
        : (schema?.contentMediaType as string),
    ...(typeof output.size === "number" ? { size: output.size } : {}),
  };
}

function fileExtension(mediaType: string): string {
  const known: Record<string, string> = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "application/json": "json",
    "text/csv": "csv",
    "text/plain": "txt",
  };
  return known[mediaType] ?? "bin";
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} kB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

const STATUS_WORDS: Record<string, string> = {
  sending: "sending…",
  pending: "waiting",
  running: "running",
  completed: "done",
  failed: "failed",
  cancelled: "cancelled",
};

const FINAL = new Set(["completed", "failed", "cancelled"]);

export class InvocationView {
  readonly element: HTMLDetailsElement;
  readonly #client: ThingClient;
  readonly #title: string;
  readonly #outputSchema: JsonSchema | undefined;
  readonly #describeOutput: ((output: unknown) => string) | undefined;
  readonly #takeBlob: ((blob: DownloadedOutput) => void) | undefined;
  readonly #status: HTMLElement;
  readonly #result: HTMLElement;
  readonly #progress: HTMLProgressElement;
  readonly #percent: HTMLElement;
  readonly #message: HTMLElement;
  readonly #cancel: HTMLButtonElement;
  readonly #log: HTMLOListElement;
  readonly #output: HTMLElement;
  readonly #objectUrls: string[] = [];
  #handle: InvocationHandle | undefined;

  constructor(options: {
    client: ThingClient;
    title: string;
    /** The action's output schema (a blob's `contentMediaType` is read from it). */
    output?: JsonSchema | undefined;
    /** A one-line summary of the output, said instead of the output itself. */
    describeOutput?: (output: unknown) => string;
    /** Where a blob output goes (e.g. a gallery) instead of into this view. */
    takeBlob?: (blob: DownloadedOutput) => void;
  }) {
    this.#client = options.client;
    this.#title = options.title;
    this.#outputSchema = options.output;
    this.#describeOutput = options.describeOutput;
    this.#takeBlob = options.takeBlob;
    this.#status = h("span", { class: "status" }, STATUS_WORDS.sending!);
    this.#result = h("span", { class: "result" });
    this.#progress = h("progress", { max: 1, "aria-label": `${options.title} progress` });
    this.#percent = h("span", { class: "percent" });
    this.#message = h("span", { class: "progress-message muted" });
    this.#cancel = h(
      "button",
      { type: "button", class: "danger", disabled: true, onclick: () => void this.cancel() },
      "Cancel",
    );
    this.#log = h("ol", { class: "log", role: "log", "aria-label": `${options.title} log` });
    this.#output = h("div", { class: "output-area" });
    this.element = h(
      "details",
      { class: "invocation", "data-status": "sending", open: true },
      h(
        "summary",
        { class: "invocation-summary" },
        h("strong", {}, options.title),
        " ",
        this.#status,
        this.#result,
      ),
      h(
        "div",
        { class: "progress-row" },
        this.#progress,
        this.#percent,
        this.#message,
        this.#cancel,
      ),
      this.#log,
      this.#output,
    );
  }

  /**
   * Follow an invocation to its end and show its output (or why it has none). Resolves
   * with the output, or undefined when it failed or was cancelled.
   */
  async follow(handle: InvocationHandle): Promise<unknown> {
    this.#handle = handle;
    this.update({
      status: handle.status,
      log: handle.report.log ?? [],
      report: handle.report,
      ...progressOf(handle),
    });
    try {
      const output = await handle.result();
      await this.#showOutput(output);
      this.#setStatus("completed");
      return output;
    } catch (error) {
      if (error instanceof InvocationCancelledError) this.#setStatus("cancelled");
      else {
        this.showError(error);
        this.#setStatus(handle.finished ? handle.status : "failed");
      }
      return undefined;
    }
  }

  /** A status, progress or log update of the invocation. */
  update(update: InvocationUpdate): void {
    // The final status is set by follow(), once the result is on the page.
    if (!FINAL.has(update.status)) this.#setStatus(update.status);
    if (update.fraction !== undefined) {
      this.#progress.value = update.fraction;
      this.#percent.textContent = `${Math.round(update.fraction * 100)} %`;
    }
    if (update.message !== undefined) this.#message.textContent = update.message;
    for (const record of update.log) {
      const time = record.time ? new Date(record.time).toLocaleTimeString() : "";
      const level = record.level ?? "info";
      this.#log.append(h("li", { class: `level-${level}` }, `${time} ${level} ${record.message}`));
    }
    while (this.#log.childElementCount > MAX_LOG_LINES) this.#log.firstElementChild?.remove();
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  /** Ask the server to cancel; the status turns `cancelled` once it has settled. */
  async cancel(): Promise<void> {
    const handle = this.#handle;
    if (!handle || handle.finished) return;
    this.#cancel.disabled = true;
    this.#status.textContent = "cancelling…";
    try {
      await handle.cancel();
    } catch (error) {
      this.showError(error);
      this.#cancel.disabled = false;
    }
  }

  get running(): boolean {
    return this.#handle !== undefined && !this.#handle.finished;
  }

  showError(error: unknown): void {
    const text = errorText(error);
    this.#result.textContent = ` — ${text}`;
    this.#result.className = "result problem";
    this.#output.replaceChildren(h("p", { class: "problem", role: "alert" }, text));
    if (!this.#handle) this.#setStatus("failed");
  }

  /** Release the object URLs of downloaded blobs (when the view leaves the page). */
  dispose(): void {
    for (const url of this.#objectUrls) URL.revokeObjectURL(url);
    this.#objectUrls.length = 0;
  }

  #setStatus(status: string): void {
    this.element.dataset.status = status;
    this.#status.textContent = STATUS_WORDS[status] ?? status;
    const live = status === "pending" || status === "running" || status === "sending";
    this.#cancel.disabled = !live || this.#handle === undefined;
    this.#cancel.hidden = !live;
    if (status === "completed" && this.#progress.value < 1 && this.#percent.textContent === "") {
      this.#progress.value = 1;
    }
    if (!live && status !== "completed" && this.#percent.textContent === "")
      this.#progress.hidden = true;
    // Finished: one line. The result is in the summary; the details stay one click away.
    if (!live) this.element.open = false;
  }

  async #showOutput(output: unknown): Promise<void> {
    const blob = blobReference(output, this.#outputSchema);
    if (blob) {
      await this.#showBlob(blob);
      return;
    }
    if (output === undefined) return;
    if (this.#describeOutput) {
      this.#result.textContent = ` — ${this.#describeOutput(output)}`;
      return;
    }
    const short = formatValue(output);
    this.#result.textContent = ` — ${short.length > SUMMARY_CHARS ? `${short.slice(0, SUMMARY_CHARS - 1)}…` : short}`;
    this.#output.replaceChildren(
      h("pre", { class: "output", "aria-label": "Output" }, JSON.stringify(output, null, 2)),
    );
  }

  async #showBlob(reference: BlobReference): Promise<void> {
    this.#result.textContent = " — downloading the output…";
    const { bytes, mediaType } = await this.#client.downloadBlob(reference);
    const type = mediaType.split(";")[0]!.trim();
    // A copy into a fresh ArrayBuffer: Blob wants ArrayBuffer-backed views.
    const url = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type }));
    const name = `${this.#handle?.action ?? "output"}-${this.#handle?.id?.slice(0, 8) ?? "result"}.${fileExtension(type)}`;
    this.#result.textContent = ` — ${name} (${formatBytes(bytes.length)})`;
    if (this.#takeBlob) {
      // The receiver (a gallery) owns the URL from now on.
      this.#takeBlob({ url, name, mediaType: type, size: bytes.length });
      return;
    }
    this.#objectUrls.push(url);
    const link = h(
      "a",
      { href: url, download: name, class: "download" },
      `Download ${name} (${formatBytes(bytes.length)})`,
    );
    // An image opens full size in a tab of its own when clicked.
    const preview = type.startsWith("image/")
      ? h(
          "a",
          { href: url, target: "_blank", rel: "noopener", "aria-label": `Open ${name} full size` },
          h("img", {
            src: url,
            alt: `Output of ${this.#handle?.action ?? this.#title}`,
            class: "blob-image",
          }),
        )
      : null;
    this.#output.replaceChildren(
      h("figure", { class: "capture-preview" }, h("figcaption", {}, link), preview),
    );
  }
}

function progressOf(handle: InvocationHandle): { fraction?: number; message?: string } {
  const progress = handle.report.progress;
  const result: { fraction?: number; message?: string } = {};
  if (progress?.fraction !== undefined) result.fraction = progress.fraction;
  if (progress?.message !== undefined) result.message = progress.message;
  return result;
}
