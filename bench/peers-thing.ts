/**
 * The Thing `bench/peers.ts` measures, declared once for both servers (labthings-ts in
 * `peers-labthings-server.ts`, node-wot in `peers-node-wot-server.ts`): the same property
 * schemas and initial values, so both answer with the same bytes and validate writes
 * against the same rules.
 *
 * - `count`: a read-only number;
 * - `setpoint`: a writable number, 0–1000 (writes are validated; the one that is observed);
 * - `position`: a read-only object `{ x, y, z }` of integers;
 * - `noop`: an action that does nothing.
 */

export interface Position {
  x: number;
  y: number;
  z: number;
}

const Integer = { type: "integer" } as const;

/** JSON Schemas (the TD's data schemas) and the Thing's title. */
export const BENCH_THING = {
  title: "bench",
  count: { type: "number" },
  setpoint: { type: "number", minimum: 0, maximum: 1000 },
  position: {
    type: "object",
    properties: { x: Integer, y: Integer, z: Integer },
    required: ["x", "y", "z"],
    additionalProperties: false,
  },
} as const;

export const INITIAL: { count: number; setpoint: number; position: Position } = {
  count: 42,
  setpoint: 500,
  position: { x: 1200, y: -340, z: 56 },
};

/** The value every benchmarked write PUTs (valid on both servers). */
export const WRITTEN_SETPOINT = 250.5;
