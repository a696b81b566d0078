import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // The docs' examples import the package by name, as a user's code does: run them
    // against the source (one copy of the framework in the test process).
    alias: [
      {
        find: /^labthings-ts$/,
        replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)),
      },
      {
        find: /^labthings-ts\/client$/,
        replacement: fileURLToPath(new URL("./src/client/index.ts", import.meta.url)),
      },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Servers and child processes per file: keep files apart, two at a time on two cores.
    pool: "forks",
    maxWorkers: 2,
    // No test may send DNS-SD on the machine's interfaces: servers bound to 0.0.0.0 would
    // advertise by default. The mDNS tests lift this inside their network namespace.
    env: { LABTHINGS_MDNS: "off" },
  },
});
