import { configDefaults, defineConfig } from "vitest/config";

/**
 * The fast set (`make test-unit`, `vitest run --project unit`): tests that start no cluster, no
 * process and open no socket (Raft in memory, checkers, engines on a temp dir, the scheduler's
 * logic against a mock cluster, the ctl's command set). Everything else is the `cluster` project.
 * A new test file lands in `cluster` unless it is listed here, so `make test` always runs it;
 * test/architecture/unit-project.test.ts keeps this list free of servers and processes.
 */
export const UNIT_TESTS = [
  "test/architecture/**/*.test.ts",
  "test/lab1-standalone/engine.test.ts",
  "test/lab1-standalone/wire.test.ts",
  "test/lab2a-raft/**/*.test.ts",
  "test/lab2b-raftkv/peer-door.test.ts",
  "test/lab3a-confchange/**/*.test.ts",
  "test/lab3b-multiraft/ctl-commands.test.ts",
  "test/lab3b-multiraft/keyspace.test.ts",
  "test/lab3c-scheduler/balance-leader.test.ts",
  "test/lab3c-scheduler/balance-region.test.ts",
  "test/lab3c-scheduler/balance-sim.test.ts",
  "test/lab3c-scheduler/heartbeat-size.test.ts",
  "test/lab3c-scheduler/operator.test.ts",
  "test/lab3c-scheduler/region-tree.test.ts",
  "test/lab3c-scheduler/replica-checker.test.ts",
  "test/lab4-txn/error-mapping.test.ts",
  "test/lab4-txn/mvcc.test.ts",
  "test/sim/checkers/**/*.test.ts",
  "test/sim/disk/durability.test.ts",
  "test/sim/disk/faults.test.ts",
  "test/watch/raw-changes.test.ts",
  "test/watch/raw-feed.test.ts",
];

export default defineConfig({
  test: {
    pool: "forks",
    // Two cores: two test files at a time keeps cluster tests from starving each other.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "unit", include: UNIT_TESTS } },
      {
        extends: true,
        test: { name: "cluster", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...UNIT_TESTS] },
      },
    ],
  },
});
