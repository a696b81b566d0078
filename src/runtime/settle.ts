export type Outcome =
  | { kind: "fulfilled" }
  | { kind: "rejected"; error: unknown }
  | { kind: "timeout" };

/** Wait for a promise, but no longer than `ms`; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: "timeout" }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (): Outcome => ({ kind: "fulfilled" }),
        (error: unknown): Outcome => ({ kind: "rejected", error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
