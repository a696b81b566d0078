/**
 * Frames out of an MJPEG response (`multipart/x-mixed-replace`), read incrementally from
 * a fetch body. A part is read by its `Content-Length`; without one, a JPEG part is read
 * by walking its marker segments to the EOI marker, and any other part by scanning for
 * the next boundary (a JPEG's compressed data can contain "\r\n--", so scanning is the
 * last resort). Browser-safe: only `ReadableStream` and typed arrays.
 */
import { ProtocolError } from "./client-errors.js";

/** A part header block longer than this is not MJPEG. */
const MAX_HEADER_BYTES = 16 * 1024;

const CR = 13;
const LF = 10;
const DASH = 45;

/** The `boundary` parameter of a multipart media type, unquoted; undefined when absent. */
export function multipartBoundary(contentType: string | null): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  return match?.[1] ?? match?.[2];
}

/**
 * Yield each part's body (for an MJPEG stream: each JPEG frame) until the closing
 * boundary or the end of the response.
 *
 * @example
 * ```ts
 * const response = await fetch("http://127.0.0.1:5000/camera/stream");
 * for await (const jpeg of readMjpegFrames(response, url)) show(jpeg);
 * ```
 */
export async function* readMjpegFrames(
  response: Response,
  url: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const contentType = response.headers.get("content-type");
  const boundary = multipartBoundary(contentType);
  if (!/^multipart\//i.test(contentType ?? "") || boundary === undefined || !response.body) {
    await response.body?.cancel().catch(() => {});
    throw new ProtocolError(`${url} answered '${contentType}', not a multipart MJPEG stream`, {
      url,
      status: response.status,
    });
  }
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const queue = new ByteQueue();
  const reader = response.body.getReader();
  const fail = (what: string): never => {
    throw new ProtocolError(`${url}: malformed multipart stream: ${what}`, { url });
  };
  let ended = false;
  /** Read more bytes; false at the end of the response. */
  const fill = async (): Promise<boolean> => {
    if (ended) return false;
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      return false;
    }
    queue.append(value);
    return true;
  };

  /** Call `find` after each read until it returns a value; undefined at the end of the response. */
  const until = async <T>(find: () => T | undefined): Promise<T | undefined> => {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (!(await fill())) return undefined;
    }
  };
  const nextDelimiter = new Uint8Array(delimiter.length + 2);
  nextDelimiter.set([CR, LF]);
  nextDelimiter.set(delimiter, 2);

  try {
    for (;;) {
      // 1. The next delimiter line: `--boundary` then CRLF, or `--boundary--` (the end).
      const at = await until(() => {
        const index = queue.indexOf(delimiter);
        return index !== -1 && queue.length >= index + delimiter.length + 2 ? index : undefined;
      });
      if (at === undefined) return;
      queue.skip(at + delimiter.length);
      if (queue.byteAt(0) === DASH && queue.byteAt(1) === DASH) return;
      // 2. The part's headers, up to the blank line.
      const headerEnd = await until(() => {
        const found = blankLine(queue);
        if (!found && queue.length > MAX_HEADER_BYTES) fail("part headers never end");
        return found;
      });
      if (headerEnd === undefined) return;
      const headers = parseHeaders(queue.text(headerEnd.start));
      queue.skip(headerEnd.end);
      // 3. The body: by Content-Length, by the JPEG's own structure, or up to the boundary.
      const declared = headers.get("content-length");
      let length: number | undefined;
      if (declared !== undefined) {
        const expected = Number(declared);
        if (!Number.isSafeInteger(expected) || expected < 0) fail(`Content-Length '${declared}'`);
        length = await until(() => (queue.length >= expected ? expected : undefined));
      } else if ((headers.get("content-type") ?? "image/jpeg").startsWith("image/jpeg")) {
        const finder = new JpegEndFinder();
        length = await until(() => finder.find(queue));
        if (length === -1) fail("a part without Content-Length is not a JPEG");
      } else {
        length = await until(() => {
          const index = queue.indexOf(nextDelimiter);
          return index === -1 ? undefined : index;
        });
      }
      if (length === undefined) return;
      yield queue.take(length);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Where the blank line ending a header block is: `start` of it, and `end` after it. */
function blankLine(queue: ByteQueue): { start: number; end: number } | undefined {
  // Headers start right after the delimiter's own line end.
  const limit = Math.min(queue.length, MAX_HEADER_BYTES + 4);
  let lineStart = -1;
  for (let i = 0; i < limit; i++) {
    if (queue.byteAt(i) !== LF) continue;
    if (lineStart !== -1) {
      const line = i - lineStart;
      if (line === 0 || (line === 1 && queue.byteAt(lineStart) === CR)) {
        return { start: lineStart, end: i + 1 };
      }
    }
    lineStart = i + 1;
  }
  return undefined;
}

function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/**
 * Finds where the JPEG at the start of a queue ends (through its EOI marker) by walking
 * its marker segments. Resumable: each call continues where the last stopped, so a part
 * arriving in many small reads is walked once, not once per read.
 */
class JpegEndFinder {
  #i = 0;
  #inScan = false;

  /** The JPEG's length; undefined when more bytes are needed; -1 when it is not a JPEG. */
  find(queue: ByteQueue): number | undefined {
    if (this.#i === 0) {
      if (queue.length < 2) return undefined;
      if (queue.byteAt(0) !== 0xff || queue.byteAt(1) !== 0xd8) return -1;
      this.#i = 2;
    }
    for (;;) {
      const i = this.#i;
      if (i + 1 >= queue.length) return undefined;
      if (this.#inScan) {
        // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a
        // restart marker.
        if (queue.byteAt(i) !== 0xff) {
          this.#i = i + 1;
          continue;
        }
        const next = queue.byteAt(i + 1);
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) {
          this.#i = i + 2;
          continue;
        }
        this.#inScan = false;
      }
      if (queue.byteAt(i) !== 0xff) return -1;
      const marker = queue.byteAt(i + 1);
      if (marker === 0xff) {
        this.#i = i + 1; // fill byte
      } else if (marker === 0xd9) {
        return i + 2;
      } else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        this.#i = i + 2; // markers without a length
      } else {
        if (i + 3 >= queue.length) return undefined;
        this.#i = i + 2 + ((queue.byteAt(i + 2) << 8) | queue.byteAt(i + 3));
        this.#inScan = marker === 0xda; // start of scan: entropy-coded data follows
      }
    }
  }
}

/** A growable byte buffer consumed from the front, without copying on every chunk. */
class ByteQueue {
  #bytes = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#bytes.length) {
      const length = this.length;
      if (length + chunk.length > this.#bytes.length) {
        const grown = new Uint8Array(Math.max(length + chunk.length, this.#bytes.length * 2));
        grown.set(this.#bytes.subarray(this.#start, this.#end));
        this.#bytes = grown;
      } else {
        this.#bytes.copyWithin(0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = length;
    }
    this.#bytes.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  byteAt(index: number): number {
    return this.#bytes[this.#start + index]!;
  }

  indexOf(pattern: Uint8Array): number {
    const view = this.#bytes.subarray(this.#start, this.#end);
    const first = pattern[0]!;
    for (let i = view.indexOf(first); i !== -1; i = view.indexOf(first, i + 1)) {
      if (i + pattern.length > view.length) return -1;
      let match = true;
      for (let j = 1; j < pattern.length; j++) {
        if (view[i + j] !== pattern[j]) {
          match = false;
          break;
        }
      }
      if (match) return i;
    }
    return -1;
  }

  text(length: number): string {
    return new TextDecoder("latin1").decode(
      this.#bytes.subarray(this.#start, this.#start + length),
    );
  }

  /** Remove and return (a copy of) the first `length` bytes. */
  take(length: number): Uint8Array {
    const taken = this.#bytes.slice(this.#start, this.#start + length);
    this.skip(length);
    return taken;
  }

  skip(length: number): void {
    this.#start += length;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
  }
}
