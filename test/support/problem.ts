/**
 * RFC 9457 Problem Details checks for every error the server answers: the status, the
 * `application/problem+json` media type, the members every body must carry (non-empty),
 * and no stack trace or source location anywhere in the body.
 */
import { expect } from "vitest";
import type { ParsedResponse } from "./raw-http.js";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { field: string; rule: string; message: string }[];
}

/** The RFC 9457 members every error body must carry, and no stack trace. */
export function expectProblemShape(problem: Problem, status: number): void {
  expect(problem).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    instance: expect.any(String),
  });
  expect(problem.type).not.toBe("");
  expect(problem.title).not.toBe("");
  expect(problem.detail).not.toBe("");
  expect(problem.instance).not.toBe("");
  expect(JSON.stringify(problem)).not.toMatch(/\n\s+at |\.ts:\d+|\.js:\d+/);
}

/** The response is Problem Details with `status`; returns the parsed body. */
export async function expectProblem(response: Response, status: number): Promise<Problem> {
  const text = await response.text();
  return expectProblemBody(response.status, response.headers.get("content-type"), text, status);
}

/** The same for a response split out of a raw connection (`parseResponses`). */
export function expectRawProblem(response: ParsedResponse | undefined, status: number): Problem {
  return expectProblemBody(
    response?.status,
    response?.headers["content-type"],
    response?.body ?? "",
    status,
  );
}

function expectProblemBody(
  actualStatus: number | undefined,
  contentType: string | null | undefined,
  text: string,
  status: number,
): Problem {
  expect(actualStatus, text).toBe(status);
  expect(contentType).toMatch(/^application\/problem\+json\b/);
  const problem = JSON.parse(text) as Problem;
  expectProblemShape(problem, status);
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/\\n\s+at /);
  return problem;
}
