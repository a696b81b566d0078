/**
 * A minimal W3C TD Directory (Things API: PUT/PATCH/DELETE /things/{id}, GET /things) for
 * tests that run in another network namespace: it keeps what is PUT and prints one JSON
 * line per request `{ method, path, contentType, ttl }`. Prints `{"port"}` once listening.
 */
import { createServer } from "node:http";

const store = new Map();
const server = createServer(async (request, response) => {
  let body = "";
  for await (const chunk of request) body += chunk;
  const id = decodeURIComponent(request.url.replace(/^\/things\//, ""));
  let ttl;
  if (request.method === "PUT") {
    const td = JSON.parse(body);
    ttl = td.registration?.ttl;
    const existed = store.has(id);
    store.set(id, td);
    response.writeHead(existed ? 204 : 201).end();
  } else if (request.method === "PATCH") {
    response.writeHead(store.has(id) ? 204 : 404).end();
  } else if (request.method === "DELETE") {
    response.writeHead(store.delete(id) ? 204 : 404).end();
  } else if (request.method === "GET" && request.url === "/things") {
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify([...store.values()]));
  } else response.writeHead(405).end();
  console.log(
    JSON.stringify({
      method: request.method,
      path: request.url,
      contentType: request.headers["content-type"],
      ttl,
    }),
  );
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () =>
  console.log(JSON.stringify({ port: server.address().port })),
);
