/**
 * One action invocation on the page: its status, a progress bar with the action's
 * message, the live log, a cancel button while it runs, and when it ends its output —
 * JSON, or for a blob a download link and, for images, the picture itself.
 */
import { InvocationCancelledError } from "../client/client-errors.js";
import type { InvocationHandle, InvocationUpdate } from "../client/invocation-handle.js";
import type { ThingClient } from "../client/thing-client.js";
import { errorText, h, isPlainObject } from "./dom.js";
import type { JsonSchema } from "./schema-check.js";

/** Log lines kept on the page per invocation (the server keeps at most 200 too). */
const MAX_LOG_LINES = 200;

/** A blob the action returned, as `{ href, mediaType, size }`. */
interface BlobReference {
  href: string;
  mediaType?: string;
  size?: number;
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

function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} kB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

export class InvocationView {
  readonly element: HTMLElement;
  readonly #client: ThingClient;
  readonly #outputSchema: JsonSchema | undefined;
  readonly #describeOutput: ((output: unknown) => string) | undefined;
  readonly #status: HTMLElement;
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
    /** A one-line summary instead of the output as JSON. */
    describeOutput?: (output: unknown) => string;
  }) {
    this.#client = options.client;
    this.#outputSchema = options.output;
    this.#describeOutput = options.describeOutput;
    this.#status = h("span", { class: "status" }, "sending…");
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
      "div",
      { class: "invocation", "data-status": "sending" },
      h(
        "div",
        { class: "progress-row" },
        this.#status,
        this.#progress,
        this.#percent,
        this.#cancel,
      ),
      this.#message,
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
      this.#setStatus("completed");
      await this.#showOutput(output);
      return output;
    } catch (error) {
      if (error instanceof InvocationCancelledError) this.#setStatus("cancelled");
      else {
        this.#setStatus(handle.finished ? handle.status : "failed");
        this.showError(error);
      }
      return undefined;
    }
  }

  /** A status, progress or log update of the invocation. */
  update(update: InvocationUpdate): void {
    this.#setStatus(update.status);
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
    this.#output.replaceChildren(h("p", { class: "problem", role: "alert" }, errorText(error)));
    if (!this.#handle) this.#setStatus("failed");
  }

  /** Release the object URLs of downloaded blobs (when the view leaves the page). */
  dispose(): void {
    for (const url of this.#objectUrls) URL.revokeObjectURL(url);
    this.#objectUrls.length = 0;
  }

  #setStatus(status: string): void {
    this.element.dataset.status = status;
    this.#status.textContent = status;
    const live = status === "pending" || status === "running";
    this.#cancel.disabled = !live || this.#handle === undefined;
    this.#cancel.hidden = !live && status !== "sending";
    if (status === "completed" && this.#progress.value < 1 && this.#percent.textContent === "") {
      this.#progress.value = 1;
    }
    if (!live && status !== "completed" && this.#percent.textContent === "")
      this.#progress.hidden = true;
  }

  async #showOutput(output: unknown): Promise<void> {
    const blob = blobReference(output, this.#outputSchema);
    if (blob) {
      await this.#showBlob(blob);
      return;
    }
    if (output === undefined || this.#describeOutput) {
      const summary = output === undefined ? "Done." : this.#describeOutput!(output);
      this.#output.replaceChildren(h("p", { class: "ok" }, summary));
      return;
    }
    this.#output.replaceChildren(
      h("pre", { class: "output", "aria-label": "Output" }, JSON.stringify(output, null, 2)),
    );
  }

  async #showBlob(reference: BlobReference): Promise<void> {
    this.#output.replaceChildren(h("p", { class: "muted" }, "Downloading the output…"));
    const { bytes, mediaType } = await this.#client.downloadBlob(reference);
    const type = mediaType.split(";")[0]!.trim();
    // A copy into a fresh ArrayBuffer: Blob wants ArrayBuffer-backed views.
    const url = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type }));
    this.#objectUrls.push(url);
    const name = `${this.#handle?.action ?? "output"}-${this.#handle?.id?.slice(0, 8) ?? "result"}.${fileExtension(type)}`;
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
            alt: `Output of ${this.#handle?.action ?? "the action"}`,
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
