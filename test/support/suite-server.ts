/**
 * A ThingServer on 127.0.0.1 (port 0) for the tests of the enclosing `describe`: started
 * in its beforeAll, closed (bounded) in its afterAll.
 *
 * @example
 * ```ts
 * describe("a server that wants a bearer token", () => {
 *   const secured = serveDuringSuite(() => [{ name: "lamp", thing: new Lamp() }], {
 *     authToken: TOKEN,
 *   });
 *   it("refuses a request without it", async () => {
 *     expect((await fetch(`${secured.base}/lamp/brightness`)).status).toBe(401);
 *   });
 * });
 * ```
 */
import { afterAll, beforeAll } from "vitest";
import { type ThingEntry, ThingServer, type ThingServerOptions } from "../../src/index.js";
import { within } from "./within.js";

export interface SuiteServer {
  /** The running server; throws before beforeAll has started it. */
  readonly server: ThingServer;
  /** Its base URL, e.g. `http://127.0.0.1:40123`; throws before beforeAll has started it. */
  readonly base: string;
}

/** `things` is called in beforeAll, so each suite gets fresh Things. */
export function serveDuringSuite(
  things: () => ThingEntry[],
  options: Omit<ThingServerOptions, "port"> = {},
): SuiteServer {
  let started: { server: ThingServer; base: string } | undefined;
  beforeAll(async () => {
    const server = new ThingServer(things(), { ...options, port: 0 });
    started = { server, base: await server.start() };
  });
  afterAll(() => started && within(started.server.close(), "the suite's server to close"));
  const running = () => {
    if (!started) throw new Error("the suite's server has not been started (use it in a test)");
    return started;
  };
  return {
    get server() {
      return running().server;
    },
    get base() {
      return running().base;
    },
  };
}
