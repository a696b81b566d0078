/**
 * Splits a byte stream of concatenated JPEGs (ffmpeg's `-f mjpeg`, `rpicam-vid --codec
 * mjpeg -o -`) into whole JPEGs, without copying more than once per frame.
 *
 * Written here because the packages that do this scan for the FF D8 / FF D9 byte pairs,
 * which also occur inside a JPEG (an EXIF thumbnail is a JPEG of its own). This parser
 * follows the JPEG structure: marker segments are skipped by their length, and only in
 * entropy-coded data (where a 0xFF byte is always stuffed or a marker) is FF D9 the end.
 */

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

enum State {
  /** Between frames: looking for FF D8. */
  SeekStart,
  /** Expecting a marker (0xFF, then its code). */
  Marker,
  /** Read 0xFF; the next byte is the marker code (or more 0xFF fill). */
  MarkerCode,
  /** Reading the two length bytes of a segment. */
  Length,
  /** Skipping a segment's payload. */
  Skip,
  /** In entropy-coded data after SOS. */
  Entropy,
  /** In entropy-coded data, just after a 0xFF. */
  EntropyFF,
}

export interface JpegSplitterOptions {
  /** A frame larger than this is dropped as garbage. Default 32 MiB. */
  maxFrameBytes?: number;
}

export class JpegSplitter {
  #state = State.SeekStart;
  #parts: Buffer[] = [];
  #size = 0;
  #lengthBytes: number[] = [];
  #marker = 0;
  #skip = 0;
  /** Bytes thrown away: garbage between frames, oversized or broken frames. */
  discardedBytes = 0;
  readonly #maxFrameBytes: number;

  constructor(options: JpegSplitterOptions = {}) {
    this.#maxFrameBytes = options.maxFrameBytes ?? 32 * 1024 * 1024;
  }

  /** Feed the next chunk; returns the JPEGs it completed (often none or one). */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let frameStart = this.#state === State.SeekStart ? -1 : 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case State.SeekStart: {
          const ff = chunk.indexOf(0xff, i);
          if (ff < 0 || ff === n - 1) {
            // A lone 0xFF at the end may start the next frame: keep it for the next chunk.
            if (ff === n - 1) {
              this.discardedBytes += ff - i;
              this.#parts = [chunk.subarray(ff)];
              this.#size = 1;
              this.#state = State.MarkerCode;
              this.#marker = -1; // "awaiting SOI"
              return frames;
            }
            this.discardedBytes += n - i;
            return frames;
          }
          if (chunk[ff + 1] === SOI) {
            this.discardedBytes += ff - i;
            frameStart = ff;
            this.#parts = [];
            this.#size = 0;
            i = ff + 2;
            this.#state = State.Marker;
          } else {
            this.discardedBytes += ff + 1 - i;
            i = ff + 1;
          }
          break;
        }
        case State.Marker: {
          if (chunk[i] !== 0xff) return this.#broken(frames, chunk, i);
          i += 1;
          this.#state = State.MarkerCode;
          break;
        }
        case State.MarkerCode: {
          const code = chunk[i]!;
          i += 1;
          if (this.#marker === -1) {
            // Resuming a frame start split across chunks (FF | D8).
            this.#marker = 0;
            if (code !== SOI) {
              this.#reset();
              this.discardedBytes += 1;
              frameStart = -1;
              this.#state = State.SeekStart;
              i -= 1;
              break;
            }
            this.#state = State.Marker;
            break;
          }
          if (code === 0xff) break; // fill byte
          if (code === EOI) {
            frames.push(this.#finish(chunk, frameStart, i));
            frameStart = -1;
            break;
          }
          if (code === SOI) {
            frameStart = this.#restartAt(i - 2); // the frame so far was cut short
            break;
          }
          if (code === TEM || (code >= 0xd0 && code <= 0xd7)) {
            this.#state = State.Marker; // markers without a length
            break;
          }
          this.#marker = code;
          this.#lengthBytes = [];
          this.#state = State.Length;
          break;
        }
        case State.Length: {
          this.#lengthBytes.push(chunk[i]!);
          i += 1;
          if (this.#lengthBytes.length === 2) {
            const length = (this.#lengthBytes[0]! << 8) | this.#lengthBytes[1]!;
            if (length < 2) return this.#broken(frames, chunk, i);
            this.#skip = length - 2;
            this.#state = State.Skip;
            if (this.#skip === 0) this.#afterSegment();
          }
          break;
        }
        case State.Skip: {
          const take = Math.min(this.#skip, n - i);
          i += take;
          this.#skip -= take;
          if (this.#skip === 0) this.#afterSegment();
          break;
        }
        case State.Entropy: {
          const ff = chunk.indexOf(0xff, i);
          if (ff < 0) {
            i = n;
            break;
          }
          i = ff + 1;
          this.#state = State.EntropyFF;
          break;
        }
        case State.EntropyFF: {
          const code = chunk[i]!;
          i += 1;
          if (code === 0x00 || (code >= 0xd0 && code <= 0xd7)) {
            this.#state = State.Entropy; // stuffed byte or restart marker
          } else if (code === 0xff) {
            // fill: stay
          } else if (code === EOI) {
            frames.push(this.#finish(chunk, frameStart, i));
            frameStart = -1;
          } else if (code === SOI) {
            // A new frame starts before this one ended (a webcam dropped its tail): drop
            // the truncated frame and go on with the new one.
            frameStart = this.#restartAt(i - 2);
          } else {
            // Another segment between scans (progressive JPEG: DHT, SOS, …).
            this.#marker = code;
            this.#lengthBytes = [];
            this.#state = State.Length;
          }
          break;
        }
      }
    }
    if (frameStart >= 0 && this.#state !== State.SeekStart) {
      const part = chunk.subarray(frameStart);
      this.#parts.push(part);
      this.#size += part.length;
      if (this.#size > this.#maxFrameBytes) {
        this.discardedBytes += this.#size;
        this.#reset();
        this.#state = State.SeekStart;
      }
    }
    return frames;
  }

  /**
   * Throw away the frame gathered so far and start a new one at the FF D8 whose 0xFF is at
   * `ffAt` in this chunk (-1: the last byte of the previous chunk). Returns the new frame start.
   */
  #restartAt(ffAt: number): number {
    this.discardedBytes += this.#size + Math.max(0, ffAt);
    this.#reset();
    this.#state = State.Marker;
    if (ffAt >= 0) return ffAt;
    this.#parts = [Buffer.from([0xff])];
    this.#size = 1;
    return 0;
  }

  #afterSegment(): void {
    this.#state = this.#marker === SOS ? State.Entropy : State.Marker;
  }

  #finish(chunk: Buffer, frameStart: number, end: number): Buffer {
    const last = chunk.subarray(Math.max(0, frameStart), end);
    const frame =
      this.#parts.length === 0
        ? last
        : Buffer.concat([...this.#parts, last], this.#size + last.length);
    this.#reset();
    this.#state = State.SeekStart;
    return frame;
  }

  /** Not a JPEG after all: drop what was gathered and look for the next frame start. */
  #broken(frames: Buffer[], chunk: Buffer, at: number): Buffer[] {
    this.discardedBytes += this.#size + at;
    this.#reset();
    this.#state = State.SeekStart;
    frames.push(...this.push(chunk.subarray(at)));
    return frames;
  }

  #reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#marker = 0;
  }
}

/** Width and height from a JPEG's SOF segment, or undefined if it has none. */
export function jpegDimensions(jpeg: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 4 <= jpeg.length) {
    if (jpeg[i] !== 0xff) return undefined;
    const code = jpeg[i + 1]!;
    if (code === 0xff) {
      i += 1;
      continue;
    }
    const length = (jpeg[i + 2]! << 8) | jpeg[i + 3]!;
    const isSof = code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc;
    if (isSof && i + 9 <= jpeg.length) {
      return {
        height: (jpeg[i + 5]! << 8) | jpeg[i + 6]!,
        width: (jpeg[i + 7]! << 8) | jpeg[i + 8]!,
      };
    }
    if (code === SOS) return undefined;
    i += 2 + length;
  }
  return undefined;
}
