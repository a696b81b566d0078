import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { declareAffordance, memberName } from "./declarations.js";
import type { ThingLogger } from "./logger.js";
import type { Thing } from "./thing.js";

/** Binary output of an action: bytes or a file, with its media type. Served at `/blobs/{id}`. */
export class BlobOutput {
  private constructor(
    readonly mediaType: string,
    readonly data: Buffer | undefined,
    readonly path: string | undefined,
  ) {}

  /** Bytes held in memory. */
  static fromBytes(data: Uint8Array, mediaType: string): BlobOutput {
    const buffer = Buffer.isBuffer(data)
      ? data
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return new BlobOutput(mediaType, buffer, undefined);
  }

  /** A file the action wrote; the blob store takes it over (moves it in) when the action ends. */
  static fromFile(path: string, mediaType: string): BlobOutput {
    return new BlobOutput(mediaType, undefined, path);
  }
}

/**
 * What an action sees while it runs. The server's context is a class whose members are
 * made on first use (most actions never read `signal` or log), so they work read or
 * destructured, but an object spread (`{ ...ctx }`) copies only `id`: to hand on a
 * changed context, name the members (`{ id: ctx.id, signal, progress: ctx.progress, … }`).
 * In a unit test, any object with these members will do.
 *
 * @example
 * ```ts
 * async run(input: { n: number }, ctx: ActionContext) {
 *   const { signal, progress } = ctx;
 *   for (let i = 0; i < input.n; i++) { await step({ signal }); progress((i + 1) / input.n); }
 * }
 * ```
 */
export interface ActionContext {
  /** The invocation id (as in `/action_invocations/{id}`). */
  readonly id: string;
  /** Fires when the invocation is cancelled or the server shuts down: pass it to drivers. */
  readonly signal: AbortSignal;
  /** Report progress: `fraction` in 0..1 (or undefined when unknown) and a short message. */
  progress(fraction: number | undefined, message?: string): void;
  /** A logger whose records are also kept with the invocation (bounded) for clients to read. */
  readonly logger: ThingLogger;
  /** Wait `ms`, ending early (rejecting with the abort reason) when the signal fires. */
  sleep(ms: number): Promise<void>;
}

export type LockOption =
  | string
  | {
      /** Actions and property writes sharing a lock name never run at once. */
      name: string;
      /** How long to wait for the lock; 0 fails fast with 409. Default: wait as long as it takes. */
      waitMs?: number;
    };

export interface ActionOptions<I extends TSchema | undefined, O extends TSchema | undefined> {
  /** JSON Schema of the input; none means the action takes no input. */
  input?: I;
  /** JSON Schema of the output; use `blobOutput()` for files. None means no output. */
  output?: O;
  /** Wire name; defaults to the method name. */
  name?: string;
  title?: string;
  description?: string;
  /** Answer the POST with the output (200) or 204 when done, instead of 201 and a status URL. */
  synchronous?: boolean;
  /** Exclusive control, e.g. `lock: "stage"` so two moves never run at once. */
  lock?: LockOption;
  /** TD hints. */
  safe?: boolean;
  idempotent?: boolean;
}

type InputOf<I> = I extends TSchema ? Static<I> : undefined;
// biome-ignore lint/suspicious/noConfusingVoidType: lets `async run(): Promise<void>` declare no output
type OutputOf<O> = O extends TSchema ? Static<O> | BlobOutput : undefined | void;

export type ActionMethod<This, I, O> = (
  this: This,
  input: InputOf<I>,
  context: ActionContext,
) => Promise<OutputOf<O>> | OutputOf<O>;

/**
 * Declare an action: a method taking its (validated) input and an ActionContext.
 * Invocations run concurrently, can be cancelled (the context's `signal`), report
 * progress and keep a log. The schemas type the method: a mismatch does not compile.
 *
 * @example
 * ```ts
 * @action({ input: Type.Object({ z: Type.Integer() }), output: Position, lock: "stage" })
 * async moveTo(input: { z: number }, ctx: ActionContext) {
 *   for (…) { await ctx.sleep(10); ctx.progress(i / n, `z=${z}`); }
 *   return this.position;
 * }
 * ```
 */
export function action<
  I extends TSchema | undefined = undefined,
  O extends TSchema | undefined = undefined,
>(options: ActionOptions<I, O> = {}) {
  return <This extends Thing>(
    _method: ActionMethod<This, I, O>,
    context: ClassMethodDecoratorContext<This, ActionMethod<This, I, O>>,
  ): void => {
    const member = memberName(context, "@action goes on a named instance method");
    const lock = typeof options.lock === "string" ? { name: options.lock } : options.lock;
    declareAffordance(context.metadata as Record<PropertyKey, unknown>, {
      kind: "action",
      name: options.name ?? member,
      member,
      input: options.input,
      output: options.output,
      title: options.title,
      description: options.description,
      synchronous: options.synchronous ?? false,
      lock,
      safe: options.safe ?? false,
      idempotent: options.idempotent ?? false,
    });
  };
}

/**
 * Output schema of an action that returns a `BlobOutput`: the ActionStatus output is
 * `{ href, mediaType, media_type, size }` and `GET href` serves the bytes (`media_type`
 * is the name labthings-fastapi's clients read).
 */
export function blobOutput(mediaType: string) {
  return Type.Object(
    {
      href: Type.String({
        format: "uri-reference",
        description: "Where to GET the bytes (supports Range)",
      }),
      mediaType: Type.String({ description: `Media type, e.g. ${mediaType}` }),
      media_type: Type.String({ description: "The same, under labthings-fastapi's name" }),
      size: Type.Integer({ minimum: 0, description: "Size in bytes" }),
    },
    { contentMediaType: mediaType },
  );
}
