/**
 * Baseline for `bench/http.ts`: a bare `node:http` server that answers fixed paths with
 * fixed bytes, i.e. the floor any Node HTTP framework sits on.
 *
 * Routes come from the env var BENCH_ROUTES, JSON `{ "/path": { "contentType", "body" } }`
 * (the bench copies them from a running labthings-ts, so bodies and content types match
 * byte for byte). Listens on 127.0.0.1, port 0, and prints `{"port":N}` on stdout.
 */
import { createServer } from "node:http";

const routes = new Map();
for (const [path, { contentType, body }] of Object.entries(
  JSON.parse(process.env.BENCH_ROUTES ?? "{}"),
)) {
  const bytes = Buffer.from(body, "utf8");
  routes.set(path, {
    "content-type": contentType,
    "content-length": String(bytes.length),
    bytes,
  });
}

const server = createServer((request, response) => {
  const route = request.method === "GET" ? routes.get(request.url) : undefined;
  if (!route) {
    response.writeHead(404, { "content-type": "text/plain", "content-length": "9" });
    response.end("not found");
    return;
  }
  response.writeHead(200, {
    "content-type": route["content-type"],
    "content-length": route["content-length"],
  });
  response.end(route.bytes);
});
// Same keep-alive window as Fastify's default, so connection handling is comparable.
server.keepAliveTimeout = 72_000;

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
