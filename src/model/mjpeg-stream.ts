import { InvalidInputError } from "../errors.js";
import { declareAffordance, memberName } from "./declarations.js";
import type { Thing } from "./thing.js";

/** One encoded frame, shared by every client: never copied, never mutated. */
export interface Frame {
  readonly jpeg: Buffer;
  /** Capture time, milliseconds since the Unix epoch (sub-millisecond precision). */
  readonly timestamp: number;
  /** 1 for the first frame pushed, then +1 per frame: clients can spot drops. */
  readonly sequence: number;
}

export interface MjpegStreamOptions {
  /** Most clients at once; one more gets 503. Default: no limit. */
  maxClients?: number;
  /** Re-send the last frame after this long without a new one, so browsers show it. Default 1000 ms. */
  resendAfterMs?: number;
  /** Drop a client whose socket has not drained for this long. Default 10 000 ms. */
  stallTimeoutMs?: number;
}

/** What the server's fan-out reports about one connected client. */
export interface StreamClientStats {
  id: number;
  remoteAddress: string;
  connectedAt: string;
  framesSent: number;
  /** Frames skipped because the client had not taken the previous one yet. */
  framesDropped: number;
}

export interface StreamStats {
  framesPushed: number;
  framesRejected: number;
  clients: StreamClientStats[];
}

/** Whoever serves the stream reports its clients through this (the model knows no sockets). */
export interface StreamClientSource {
  readonly clientCount: number;
  clientStats(): StreamClientStats[];
}

type FrameListener = (frame: Frame) => void;

/**
 * A live MJPEG stream of a camera Thing. The capture loop calls `pushFrame`; the server
 * fans each frame out to every viewer; Thing code can read `latestFrame` or await
 * `nextFrame()`. Declare it with `@mjpegStream()` so it appears in the TD and on HTTP.
 *
 * @example
 * ```ts
 * class Camera extends Thing {
 *   @mjpegStream({ title: "Live view" }) readonly stream = new MjpegStream();
 *   private onCapture(jpeg: Buffer) { this.stream.pushFrame(jpeg); }
 * }
 * ```
 */
export class MjpegStream {
  readonly options: Readonly<Required<Omit<MjpegStreamOptions, "maxClients">>> & {
    maxClients?: number;
  };
  #latest: Frame | undefined;
  #sequence = 0;
  #rejected = 0;
  #waiters = 0;
  #interruption: string | undefined;
  readonly #listeners = new Set<FrameListener>();
  readonly #clientSources = new Set<StreamClientSource>();

  constructor(options: MjpegStreamOptions = {}) {
    this.options = {
      resendAfterMs: options.resendAfterMs ?? 1000,
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      maxClients: options.maxClients,
    };
  }

  /**
   * Publish a JPEG. A buffer that is not a complete JPEG (SOI … EOI markers) throws
   * InvalidInputError to the caller; the stream and its clients are unaffected.
   */
  pushFrame(jpeg: Uint8Array, options: { timestamp?: number } = {}): Frame {
    if (!isJpeg(jpeg)) {
      this.#rejected += 1;
      throw new InvalidInputError(
        `pushFrame needs a complete JPEG (starting FF D8, ending FF D9); got ${jpeg.length} bytes`,
      );
    }
    const buffer = Buffer.isBuffer(jpeg)
      ? jpeg
      : Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
    this.#sequence += 1;
    const frame: Frame = {
      jpeg: buffer,
      timestamp: options.timestamp ?? performance.timeOrigin + performance.now(),
      sequence: this.#sequence,
    };
    this.#latest = frame;
    this.#interruption = undefined;
    for (const listener of this.#listeners) listener(frame);
    return frame;
  }

  /**
   * The source has stopped delivering (a camera unplugged, its capture process died):
   * `snapshot` then answers 503 with this reason instead of a stale frame. Viewers stay
   * connected (they keep the last frame) and get frames again from the next `pushFrame`,
   * which ends the interruption.
   */
  interrupt(reason: string): void {
    this.#interruption = reason;
  }

  /** Why the stream has no live frames now (see `interrupt`), or undefined while it has. */
  get interruption(): string | undefined {
    return this.#interruption;
  }

  /** The newest frame, or undefined before the first. */
  get latestFrame(): Frame | undefined {
    return this.#latest;
  }

  /** The next frame pushed after this call. Rejects with the signal's reason on abort. */
  nextFrame(options: { signal?: AbortSignal } = {}): Promise<Frame> {
    const { signal } = options;
    return new Promise<Frame>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      this.#waiters += 1;
      const onAbort = () => {
        this.#waiters -= 1;
        unsubscribe();
        reject(signal?.reason);
      };
      const unsubscribe = this.onFrame((frame) => {
        this.#waiters -= 1;
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
        resolve(frame);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Call `listener` with every frame pushed; returns the function that stops it. */
  onFrame(listener: FrameListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Viewers connected through the server. */
  get clientCount(): number {
    let count = 0;
    for (const source of this.#clientSources) count += source.clientCount;
    return count;
  }

  /**
   * Someone wants frames now: a viewer is connected or code awaits `nextFrame()`.
   * A capture loop can slow down when nobody is watching.
   */
  get watched(): boolean {
    return this.#waiters > 0 || this.clientCount > 0;
  }

  get stats(): StreamStats {
    return {
      framesPushed: this.#sequence,
      framesRejected: this.#rejected,
      clients: [...this.#clientSources].flatMap((source) => source.clientStats()),
    };
  }

  /** The server registers its fan-out here so `stats` can list the clients. */
  addClientSource(source: StreamClientSource): () => void {
    this.#clientSources.add(source);
    return () => this.#clientSources.delete(source);
  }
}

/** SOI at the start and EOI at the end (trailing padding after EOI is tolerated). */
export function isJpeg(data: Uint8Array): boolean {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return false;
  for (let i = data.length - 1; i >= Math.max(2, data.length - 16); i--) {
    if (data[i] === 0xd9 && data[i - 1] === 0xff) return true;
  }
  return false;
}

export interface StreamDeclarationOptions {
  /** URL segment and TD link name; defaults to the field name. */
  name?: string;
  title?: string;
  description?: string;
}

/**
 * Declare an MJPEG stream field: served at `GET /{thing}/{name}` (and `/snapshot`),
 * listed in the TD's `links`.
 */
export function mjpegStream(options: StreamDeclarationOptions = {}) {
  return <This extends Thing>(
    _value: undefined,
    context: ClassFieldDecoratorContext<This, MjpegStream>,
  ): void => {
    const member = memberName(context, "@mjpegStream goes on a named instance field");
    declareAffordance(context.metadata as Record<PropertyKey, unknown>, {
      kind: "stream",
      name: options.name ?? member,
      member,
      title: options.title,
      description: options.description,
    });
  };
}
