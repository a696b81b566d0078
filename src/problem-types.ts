/**
 * Problem Details `type` URIs. Ours are `tag:` URIs (stable names, not web pages); a few
 * problems are the same as labthings-fastapi's, and carry its URIs instead, because that
 * is how its Python `ThingClient` tells them apart (it compares `type` with
 * `docs_url(GlobalLockBusyError)` and `docs_url(InvocationCancelledError)` in
 * `client/__init__.py`'s `_invocation_error`, built in `problem_details.py`).
 */

/** `tag:labthings-ts,2026:<kind>`, e.g. `tag:labthings-ts,2026:invalid-input`. */
export function problemType(kind: string): string {
  return `tag:labthings-ts,2026:${kind}`;
}

/** labthings-fastapi's `DOCS_URL` + `#labthings_fastapi.exceptions.<Name>` (`docs_url()`). */
const UPSTREAM_EXCEPTIONS =
  "https://labthings-fastapi.readthedocs.io/en/latest/autoapi/labthings_fastapi/exceptions/index.html#labthings_fastapi.exceptions.";

/** A lock was held by someone else for longer than the caller would wait. */
export const LOCK_BUSY_TYPE = `${UPSTREAM_EXCEPTIONS}GlobalLockBusyError`;

/** An invocation stopped because it was cancelled (DELETE, or the server shutting down). */
export const INVOCATION_CANCELLED_TYPE = `${UPSTREAM_EXCEPTIONS}InvocationCancelledError`;

/** The Web Thing Protocol's error types, which labthings-fastapi's websocket uses. */
const WEB_THING_ERRORS = "https://w3c.github.io/web-thing-protocol/errors";
export const WEB_THING_NOT_FOUND_TYPE = `${WEB_THING_ERRORS}#not-found`;
export const WEB_THING_NOT_OBSERVABLE_TYPE = `${WEB_THING_ERRORS}#not-observable`;
