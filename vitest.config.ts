import { defineConfig } from "vitest/config";

export default defineConfig({
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
