/**
 * Fan-out of one MJPEG stream to many clients. Each frame is framed once as one Buffer
 * and written to every client. The latest frame wins: a client whose socket has not
 * drained is skipped and gets the newest frame on 'drain', so at most one frame waits
 * per client, a slow client never grows memory, and never slows the others.
 */
import type { ThingLogger } from "../model/logger.js";
import type {
  Frame,
  MjpegStream,
  StreamClientSource,
  StreamClientStats,
} from "../model/mjpeg-stream.js";

export const BOUNDARY = "frame";
export const MJPEG_CONTENT_TYPE = `multipart/x-mixed-replace;boundary=${BOUNDARY}`;

const CRLF = Buffer.from("\r\n");
/** Headers of a part whose length is not known yet (advance-headers mode). */
const ADVANCE_HEADERS = Buffer.from(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n`);
const CLOSING = Buffer.from(`--${BOUNDARY}--\r\n`);
const ADVANCE_CLOSING = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);

/** What a client is written to: an http.ServerResponse fits. */
export interface FrameSink {
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  destroy(): unknown;
  on(event: "drain", listener: () => void): unknown;
  readonly writableLength: number;
}

export interface ClientOptions {
  remoteAddress: string;
  /**
   * Write each frame followed at once by the next part's headers (no Content-Length):
   * Chromium shows a part only when the next one starts, so this removes a frame of lag.
   */
  advanceHeaders?: boolean;
}

/** A frame framed for the wire, built once and shared by all clients. */
class FramedFrame {
  #standard: Buffer | undefined;
  #advance: Buffer | undefined;
  constructor(readonly frame: Frame) {}

  /** `--frame` headers, JPEG, CRLF: the part as ffmpeg and OpenCV want it. */
  get standard(): Buffer {
    if (!this.#standard) {
      const { jpeg, timestamp, sequence } = this.frame;
      const headers =
        `--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n` +
        `X-Timestamp: ${(timestamp / 1000).toFixed(6)}\r\nX-Sequence: ${sequence}\r\n\r\n`;
      this.#standard = Buffer.concat([Buffer.from(headers, "latin1"), jpeg, CRLF]);
    }
    return this.#standard;
  }

  /** JPEG, then the next part's headers. */
  get advance(): Buffer {
    this.#advance ??= Buffer.concat([this.frame.jpeg, CRLF, ADVANCE_HEADERS]);
    return this.#advance;
  }
}

let nextClientId = 1;

export class MjpegClient {
  readonly id = nextClientId++;
  readonly connectedAt = new Date();
  framesSent = 0;
  framesDropped = 0;
  #pending: FramedFrame | undefined;
  // Hot path (every client, every frame): a boolean and plain numbers, no listener churn.
  #waiting = false;
  #waitingSince = 0;
  #lastWriteAt = 0;
  #ended = false;

  constructor(
    private readonly sink: FrameSink,
    readonly options: ClientOptions,
  ) {
    // One listener for the client's life rather than a `once` per full socket.
    sink.on("drain", this.#onDrain);
    if (options.advanceHeaders) sink.write(ADVANCE_HEADERS);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Write now, or hold as the one pending frame (replacing, and so dropping, an older
   * one). `now` is the caller's clock reading, shared by every client of a frame.
   */
  offer(framed: FramedFrame, now: number): void {
    if (this.#ended) return;
    if (this.#waiting) {
      if (this.#pending) this.framesDropped += 1;
      this.#pending = framed;
      return;
    }
    this.#write(framed, now);
  }

  #write(framed: FramedFrame, now: number): void {
    const ok = this.sink.write(this.options.advanceHeaders ? framed.advance : framed.standard);
    this.framesSent += 1;
    this.#lastWriteAt = now;
    if (!ok) {
      this.#waiting = true;
      this.#waitingSince = now;
    }
  }

  #onDrain = (): void => {
    if (!this.#waiting) return;
    this.#waiting = false;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending && !this.#ended) this.#write(pending, performance.now());
  };

  /** Milliseconds the socket has been full, 0 when it is not. */
  stalledFor(now: number): number {
    return this.#waiting ? now - this.#waitingSince : 0;
  }

  idleFor(now: number): number {
    return this.#waiting ? 0 : now - this.#lastWriteAt;
  }

  /** Clean end: the closing delimiter, then end of response (the last frame stays on screen). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#pending = undefined;
    this.sink.end(this.options.advanceHeaders ? ADVANCE_CLOSING : CLOSING);
  }

  /** Cut the connection (client stalled, or the shutdown deadline passed). */
  destroy(): void {
    this.#ended = true;
    this.#pending = undefined;
    this.sink.destroy();
  }

  /** The socket closed (either side): forget everything at once. */
  release(): void {
    this.#ended = true;
    this.#pending = undefined;
  }

  stats(): StreamClientStats {
    return {
      id: this.id,
      remoteAddress: this.options.remoteAddress,
      connectedAt: this.connectedAt.toISOString(),
      framesSent: this.framesSent,
      framesDropped: this.framesDropped,
    };
  }
}

export class MjpegFanout implements StreamClientSource {
  readonly #clients = new Set<MjpegClient>();
  #latest: FramedFrame | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #unsubscribe: () => void;
  readonly #removeSource: () => void;

  constructor(
    readonly stream: MjpegStream,
    readonly label: string,
    private readonly logger: ThingLogger,
  ) {
    this.#unsubscribe = stream.onFrame((frame) => this.#publish(frame));
    this.#removeSource = stream.addClientSource(this);
    if (stream.latestFrame) this.#latest = new FramedFrame(stream.latestFrame);
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** True when `maxClients` is reached. */
  get full(): boolean {
    const max = this.stream.options.maxClients;
    return max !== undefined && this.#clients.size >= max;
  }

  /** Start streaming to `sink`; the newest frame goes out at once so a viewer never waits. */
  attach(sink: FrameSink, options: ClientOptions): MjpegClient {
    const client = new MjpegClient(sink, options);
    this.#clients.add(client);
    if (this.#latest) client.offer(this.#latest, performance.now());
    this.#timer ??= setInterval(() => this.#sweep(), 250).unref();
    return client;
  }

  /** The client's socket closed: drop it and its pending frame. */
  detach(client: MjpegClient): void {
    client.release();
    this.#clients.delete(client);
    if (this.#clients.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  clientStats(): StreamClientStats[] {
    return [...this.#clients].map((client) => client.stats());
  }

  /** Stop listening to the stream (server closed). */
  dispose(): void {
    this.#unsubscribe();
    this.#removeSource();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #publish(frame: Frame): void {
    const framed = new FramedFrame(frame);
    this.#latest = framed;
    const now = performance.now();
    for (const client of this.#clients) client.offer(framed, now);
  }

  /** Drop stalled clients; re-send the last frame to idle ones so browsers display it. */
  #sweep(): void {
    const now = performance.now();
    const { stallTimeoutMs, resendAfterMs } = this.stream.options;
    for (const client of this.#clients) {
      if (client.stalledFor(now) > stallTimeoutMs) {
        this.logger.warn(
          {
            stream: this.label,
            client: client.options.remoteAddress,
            stalledMs: Math.round(client.stalledFor(now)),
          },
          "dropping MJPEG client that stopped reading",
        );
        client.destroy();
      } else if (this.#latest && client.idleFor(now) >= resendAfterMs) {
        client.offer(this.#latest, now);
      }
    }
  }
}
