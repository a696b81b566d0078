import { createReadStream } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ConflictError, LabThingsError, NotFoundError } from "../../errors.js";
import type { BlobStore, StoredBlob } from "../../runtime/blob-store.js";
import type { ExposedThing } from "../../runtime/exposed-thing.js";
import type { Invocation } from "../../runtime/invocation.js";
import type { InvocationManager } from "../../runtime/invocation-manager.js";
import { acceptsEventStream } from "../event-stream.js";
import { guardMethods } from "../method-guard.js";
import { sendProblem } from "../problem-details.js";
import type { RouteContext } from "../route-context.js";
import { sendJson } from "../send-json.js";

export interface ActionRouteContext extends RouteContext {
  readonly invocations: InvocationManager;
  readonly blobs: BlobStore;
}

/** How long DELETE waits for a cancelled invocation to settle before answering. */
const CANCEL_WAIT_MS = 5000;

export const invocationPath = (prefix: string, id: string) => `${prefix}/action_invocations/${id}`;
export const blobPath = (prefix: string, id: string) => `${prefix}/blobs/${id}`;

/**
 * invokeaction, queryaction, cancelaction, queryallactions (HTTP Basic Profile,
 * asynchronous action responses), the invocation lists, and `/blobs/{id}`.
 */
export function registerActionRoutes(app: FastifyInstance, context: ActionRouteContext): void {
  const { invocations, prefix } = context;
  const status = (invocation: Invocation) =>
    invocation.toStatus(invocationPath(prefix, invocation.id));

  for (const exposed of context.registry.values()) {
    registerThingActions(app, exposed, context);
    app.get(
      `/${exposed.name}/actions`,
      { schema: { tags: [exposed.name], summary: "Invocations of every action, newest first" } },
      async (_request, reply) =>
        sendJson(
          reply,
          Object.fromEntries(
            [...exposed.actions.keys()].map((name) => [
              name,
              invocations.list({ thing: exposed.name, action: name }).map(status),
            ]),
          ),
        ),
    );
    guardMethods(app, `/${exposed.name}/actions`, ["GET"], `'${exposed.name}/actions'`);
  }

  app.get(
    "/action_invocations/",
    { schema: { tags: ["actions"], summary: "Every action invocation, newest first" } },
    async (_request, reply) => sendJson(reply, invocations.list().map(status)),
  );
  guardMethods(app, "/action_invocations/", ["GET"], "/action_invocations/");

  app.get(
    "/action_invocations/:id",
    {
      schema: {
        tags: ["actions"],
        summary: "Status of one invocation (queryaction)",
        params: idParam,
      },
    },
    async (request, reply) => {
      const invocation = invocations.get(idOf(request));
      if (!acceptsEventStream(request)) return sendJson(reply, status(invocation));
      const lastEventId = Number(request.headers["last-event-id"]);
      if (
        invocation.finished &&
        lastEventId >= (invocation.finalNotificationId ?? Number.POSITIVE_INFINITY)
      ) {
        // The client saw the end already: 204 tells EventSource to stop reconnecting.
        return reply.code(204).send();
      }
      // Its status now, then every update (status, progress, log) until it ends; a
      // finished invocation has nothing more to come after its status.
      const current = {
        id: context.eventStreams.lastId,
        event: invocation.action,
        data: JSON.stringify(status(invocation)),
      };
      context.eventStreams.open(request, reply, {
        label: `invocation ${invocation.id}`,
        filter: (n) => n.invocation === invocation,
        data: () => status(invocation),
        initial: [current],
        endAfterInitial: invocation.finished,
        endAfter: () => invocation.finished,
        // At shutdown the watcher sees the final status (cancelled) before its stream ends.
        finalMessage: invocation.finished ? undefined : invocation.settled,
      });
    },
  );
  app.delete(
    "/action_invocations/:id",
    {
      schema: {
        tags: ["actions"],
        summary: "Cancel an invocation (cancelaction); 204 once it has settled",
        params: idParam,
      },
    },
    async (request, reply) => {
      await invocations.cancel(idOf(request), CANCEL_WAIT_MS);
      return reply.code(204).send();
    },
  );
  guardMethods(app, "/action_invocations/:id", ["GET", "DELETE"], "an action invocation");

  // labthings-fastapi's `action_invocation_output`: the output alone (its `output` link).
  app.get(
    "/action_invocations/:id/output",
    {
      schema: {
        tags: ["actions"],
        summary: "The output of an invocation alone: JSON, or a blob's bytes (supports Range)",
        params: idParam,
      },
    },
    async (request, reply) => {
      const invocation = invocations.get(idOf(request));
      if (invocation.status !== "completed" || invocation.output === undefined) {
        throw new ConflictError(`invocation '${invocation.id}' has ${whyNoOutput(invocation)}`);
      }
      const blob = invocations.outputBlob(invocation);
      if (blob) return sendBlob(request, reply, blob);
      return sendJson(reply, invocation.output);
    },
  );
  guardMethods(app, "/action_invocations/:id/output", ["GET"], "an invocation's output");

  app.get(
    "/blobs/:id",
    {
      schema: {
        tags: ["actions"],
        summary: "Binary output of an action (supports Range)",
        params: idParam,
      },
    },
    async (request, reply) => {
      const blob = context.blobs.get(idOf(request));
      if (!blob) throw new NotFoundError("no such blob (it may have expired with its invocation)");
      return sendBlob(request, reply, blob);
    },
  );
  guardMethods(app, "/blobs/:id", ["GET"], "a blob");
}

const idParam = { type: "object", properties: { id: { type: "string" } }, required: ["id"] };
const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;

function registerThingActions(
  app: FastifyInstance,
  exposed: ExposedThing,
  context: ActionRouteContext,
): void {
  const { invocations, prefix } = context;
  for (const declaration of exposed.actions.values()) {
    const url = `/${exposed.name}/${declaration.name}`;
    app.post(
      url,
      {
        schema: {
          tags: [exposed.name],
          summary: `Invoke ${declaration.title ?? declaration.name}`,
          description: declaration.description,
          ...(declaration.input ? { body: declaration.input } : {}),
        },
      },
      async (request, reply) => {
        const input = hasBody(request) ? request.body : undefined;
        const invocation = invocations.invoke(exposed, declaration.name, input);
        const href = invocationPath(prefix, invocation.id);
        if (!declaration.synchronous) {
          return sendJson(reply.code(201).header("location", href), invocation.toStatus(href));
        }
        await invocation.settled;
        if (invocation.status === "completed") {
          return invocation.output === undefined
            ? reply.code(204).send()
            : sendJson(reply, invocation.output);
        }
        const error = invocation.error ?? {
          type: "about:blank",
          title: "Cancelled",
          status: 409,
          detail: "the invocation was cancelled",
        };
        return sendProblem(reply, {
          ...error,
          status: error.status >= 400 ? error.status : 500,
          instance: href,
        });
      },
    );
    app.get(
      url,
      {
        schema: {
          tags: [exposed.name],
          summary: `Invocations of ${declaration.name}, newest first`,
        },
      },
      async (_request, reply) =>
        sendJson(
          reply,
          invocations
            .list({ thing: exposed.name, action: declaration.name })
            .map((i) => i.toStatus(invocationPath(prefix, i.id))),
        ),
    );
    guardMethods(app, url, ["GET", "POST"], `action '${exposed.name}/${declaration.name}'`);
  }
}

/** "no output yet (it is running)", "no output (it is failed)", … */
function whyNoOutput(invocation: Invocation): string {
  if (!invocation.finished) return `no output yet (it is ${invocation.status})`;
  if (invocation.status === "completed") return "no output (it completed without one)";
  return `no output (it is ${invocation.status})`;
}

/**
 * Whether the request carried a body at all (Fastify reports a missing one as `null`, the
 * same as a JSON `null`): a body-less POST is "no input", which an action whose input
 * members are all optional takes as `{}`.
 */
function hasBody(request: FastifyRequest): boolean {
  if (emptyBodies.has(request)) return false;
  const length = request.headers["content-length"];
  return (
    request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
  );
}

/**
 * Requests whose JSON body arrived empty (a chunked body of no bytes: the headers alone
 * cannot tell it from one with content), marked by the server's JSON parser.
 */
const emptyBodies = new WeakSet<FastifyRequest>();

export function markEmptyBody(request: FastifyRequest): void {
  emptyBodies.add(request);
}

/** Serve a blob with Content-Type, Content-Length and single-range `Range` support. */
function sendBlob(request: FastifyRequest, reply: FastifyReply, blob: StoredBlob): FastifyReply {
  reply.header("accept-ranges", "bytes").type(blob.mediaType);
  const range = parseRange(request.headers.range, blob.size);
  if (range === "unsatisfiable") {
    reply.header("content-range", `bytes */${blob.size}`);
    throw new RangeNotSatisfiableError(
      `the range '${request.headers.range}' is outside the blob's ${blob.size} bytes`,
    );
  }
  const { start, end } = range ?? { start: 0, end: blob.size - 1 };
  if (range) reply.code(206).header("content-range", `bytes ${start}-${end}/${blob.size}`);
  reply.header("content-length", String(Math.max(0, end - start + 1)));
  if (blob.data) return reply.send(blob.data.subarray(start, end + 1));
  if (blob.size === 0) return reply.send(Buffer.alloc(0));
  return reply.send(createReadStream(blob.path!, { start, end }));
}

class RangeNotSatisfiableError extends LabThingsError {
  override readonly status = 416;
  override readonly problemType = "range-not-satisfiable";
}

/**
 * One `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Anything else (several ranges, other
 * units, nonsense) is ignored and the whole blob is sent, as RFC 9110 allows.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  const match = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    // An empty blob has no last bytes to give (RFC 9110 §14.1.2).
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}
