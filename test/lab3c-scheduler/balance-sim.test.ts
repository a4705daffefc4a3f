// Balance-region converges without thrashing: a scheduling simulation (apply delay, snapshots,
// heartbeats) where empty stores join a loaded cluster. Prints its figures; SEED=<n> replays one run.
import { describe, expect, it } from "vitest";
import type { SimOptions } from "./balance-sim.js";
import { BalanceSim, describeResult, minimalMoves } from "./balance-sim.js";

const SEED = Number(process.env.SEED ?? 1);

const SCENARIOS: Omit<SimOptions, "seed">[] = [
  { initialStores: 3, newStores: 1, regions: 10, durationMs: 120_000 },
  { initialStores: 3, newStores: 1, regions: 26, durationMs: 120_000 },
  { initialStores: 3, newStores: 1, regions: 40, durationMs: 120_000 },
  { initialStores: 3, newStores: 2, regions: 40, durationMs: 120_000 },
  // TinyKV's production heartbeat interval (10 s) and slow snapshots: stale statistics for longer.
  { initialStores: 3, newStores: 1, regions: 40, durationMs: 240_000, heartbeatMs: 10_000, snapshotMs: 8_000 },
];

/** Nothing may be scheduled or change in this last stretch of each run. */
const QUIET_MS = 60_000;

describe("lab3c balance-region simulation", () => {
  it("regions of different sizes, noisy heartbeats: balanced by size, and five minutes of noise add no thrash", async () => {
    const opts: SimOptions = {
      seed: SEED,
      initialStores: 3,
      newStores: 1,
      regions: 40,
      sizeSpread: 0.5,
      sizeJitter: 0.1,
      durationMs: 300_000,
    };
    const result = await new BalanceSim(opts).run();
    const line = describeResult(opts, result);
    console.log(line);
    const why = `${line} (replay with SEED=${SEED})`;
    const sizes = [...result.regionSizes.values()];
    // At rest no store leads another by twice the largest region (plus what heartbeat noise hides).
    expect(Math.max(...sizes) - Math.min(...sizes), `size spread: ${why}`).toBeLessThan(
      2.2 * 2 * result.maxRegionSizeMib,
    );
    expect(result.moves, `too many replica moves: ${why}`).toBeLessThanOrEqual(
      1.5 * minimalMoves(result.initialCounts),
    );
    // A state just under the threshold may tip over once on noise; it must not swing back and forth.
    expect(result.badlyReplicated, `regions without exactly 3 peers at the end: ${why}`).toBe(0);
  });

  for (const scenario of SCENARIOS) {
    const heartbeat = scenario.heartbeatMs ? `, heartbeats every ${scenario.heartbeatMs / 1000} s` : "";
    const name = `${scenario.initialStores} stores + ${scenario.newStores} empty, ${scenario.regions} regions${heartbeat}`;
    it(`${name}: within one region of ideal, <= 1.5x the minimal moves, then stays put`, async () => {
      const opts = { ...scenario, seed: SEED };
      const result = await new BalanceSim(opts).run();
      const line = describeResult(opts, result);
      console.log(line);
      const why = `${line} (replay with SEED=${SEED})`;
      const counts = [...result.regionCounts.values()];
      const ideal = counts.reduce((a, b) => a + b, 0) / counts.length;
      for (const [store, count] of result.regionCounts) {
        expect(
          Math.abs(count - ideal),
          `store ${store} holds ${count} regions, ideal ${ideal}: ${why}`,
        ).toBeLessThanOrEqual(1);
      }
      expect(result.moves, `too many replica moves: ${why}`).toBeLessThanOrEqual(
        1.5 * minimalMoves(result.initialCounts),
      );
      expect(result.lastChangeAtMs, `still changing in the last ${QUIET_MS / 1000} s: ${why}`).toBeLessThan(
        scenario.durationMs - QUIET_MS,
      );
      expect(result.lastOperatorAtMs, `still scheduling in the last ${QUIET_MS / 1000} s: ${why}`).toBeLessThan(
        scenario.durationMs - QUIET_MS,
      );
      expect(result.badlyReplicated, `regions without exactly 3 peers at the end: ${why}`).toBe(0);
    });
  }
});
