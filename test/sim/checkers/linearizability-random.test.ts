// Seeded random histories: linearizable by construction (must pass), then with one seeded
// mutation that makes them provably non-linearizable (must fail). A failure names its seed;
// SEED=n replays one seed, SEEDS=n runs more (from SEED_START, default 1).
import { describe, expect, it } from "vitest";
import { describeHistory } from "./history.js";
import type { GeneratorOptions } from "./history-generator.js";
import { breakHistory, generateLinearizableHistory } from "./history-generator.js";
import { checkLinearizable } from "./linearizability.js";

const ONE_SEED = process.env.SEED;
const SEEDS = Number(process.env.SEEDS ?? 150);
const SEED_START = Number(process.env.SEED_START ?? 1);
const seeds = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: SEEDS }, (_, i) => SEED_START + i);
const replay = (seed: number): string =>
  `seed ${seed} — replay: SEED=${seed} npx vitest run test/sim/checkers/linearizability-random.test.ts`;

function optionsFor(seed: number): GeneratorOptions {
  // Vary the shape with the seed: few keys (much contention) to many, some with many unknowns.
  return {
    seed,
    operations: 40 + (seed % 7) * 30,
    keys: 1 + (seed % 5),
    clients: 2 + (seed % 6),
    unknownRate: seed % 3 === 0 ? 0.2 : 0.05,
  };
}

describe(`random histories, seeds ${seeds[0]}..${seeds[seeds.length - 1]}`, () => {
  it("every generated history is linearizable", () => {
    for (const seed of seeds) {
      const history = generateLinearizableHistory(optionsFor(seed));
      const result = checkLinearizable(history);
      if (result.verdict !== "ok") {
        expect.fail(`${replay(seed)}\n${result.report}\nfull history:\n${describeHistory(history)}`);
      }
    }
  });

  it("every generated history with repeated values and many unknown outcomes is linearizable", () => {
    for (const seed of seeds) {
      const history = generateLinearizableHistory({ ...optionsFor(seed), repeatedValues: 3, unknownRate: 0.3 });
      const result = checkLinearizable(history);
      if (result.verdict !== "ok") {
        expect.fail(`${replay(seed)} (repeated values)\n${result.report}\nfull history:\n${describeHistory(history)}`);
      }
    }
  });

  it("every mutated history is caught, with a piece that fails on its own", () => {
    let mutated = 0;
    for (const seed of seeds) {
      const history = generateLinearizableHistory(optionsFor(seed));
      const mutation = breakHistory(history, seed);
      if (mutation === undefined) continue;
      mutated++;
      const result = checkLinearizable(mutation.history);
      if (result.verdict !== "illegal") {
        expect.fail(
          `${replay(seed)}: ${mutation.description} not caught (${result.verdict})\n${describeHistory(mutation.history)}`,
        );
      }
      for (const f of result.failures) {
        if (checkLinearizable(f.operations).verdict !== "illegal") {
          expect.fail(`${replay(seed)}: the reported piece passes on its own\n${describeHistory(f.operations)}`);
        }
      }
    }
    // Nearly every seed offers a mutation; if none did, this test would prove nothing.
    expect(mutated, "seeds that could be mutated").toBeGreaterThan(seeds.length * 0.8);
  });
});

describe("the size the simulator needs", () => {
  it("2,000 ops over 20 keys from 8 clients, with unknown outcomes", () => {
    const seed = ONE_SEED !== undefined ? Number(ONE_SEED) : 2026;
    const history = generateLinearizableHistory({ seed, operations: 2000, keys: 20, clients: 8, unknownRate: 0.05 });
    const started = performance.now();
    const result = checkLinearizable(history);
    const elapsed = performance.now() - started;
    const broken = breakHistory(history, seed);
    const brokenStarted = performance.now();
    const brokenResult = broken ? checkLinearizable(broken.history) : undefined;
    const brokenElapsed = performance.now() - brokenStarted;
    // Printed, not asserted: a pass/fail test must not depend on the machine's speed.
    console.log(
      `linearizability of 2000 ops/20 keys/8 clients (seed ${seed}): ${elapsed.toFixed(1)} ms, ${result.steps} steps; ` +
        `broken copy (${broken?.description}) caught and shrunk in ${brokenElapsed.toFixed(1)} ms`,
    );
    expect(result.verdict, replay(seed)).toBe("ok");
    expect(brokenResult?.verdict, replay(seed)).toBe("illegal");
  });
});
