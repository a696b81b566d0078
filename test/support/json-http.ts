/**
 * JSON over `fetch`: GET a value (asserting 200), PUT a value, POST an optional body.
 * Shared by the property, action, microscope and Thing Description tests.
 */
import { expect } from "vitest";

/** GET `url` (Accept: `accept`), expect 200 and return the parsed JSON body. */
export async function getJson<T = unknown>(url: string, accept = "application/json"): Promise<T> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status, `GET ${url}`).toBe(200);
  return (await response.json()) as T;
}

/** PUT `value` as a JSON body. */
export function putJson(url: string, value: unknown): Promise<Response> {
  return fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
}

/** POST `body` as JSON; without `body`, a POST with no body and no Content-Type. */
export function postJson(url: string, body?: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
}
