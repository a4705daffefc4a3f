// A few seeds of the whole-cluster simulation (stores, the real scheduler, real clients), and the
// determinism it rests on. `make sim` runs
// many more; a failure here prints the seed, the fault schedule and the trace tail to replay with
// `SEED=<n> make sim`.
import { describe, expect, it } from "vitest";
import { describeResult, runSimulation } from "./simulation.js";

const SEEDS = [1, 2, 3, 4, 5];

describe("the deterministic simulation", () => {
  it("one seed run twice gives the same trace hash", async () => {
    const first = await runSimulation({ seed: 42, faultPhaseMs: 6_000 });
    const second = await runSimulation({ seed: 42, faultPhaseMs: 6_000 });
    expect(first.events, "the run did something").toBeGreaterThan(1_000);
    expect(
      second.traceHash,
      `seed 42 diverged; first run:\n${describeResult(first)}\nsecond run:\n${describeResult(second)}`,
    ).toBe(first.traceHash);
  });

  it("different seeds give different executions", async () => {
    const a = await runSimulation({ seed: 11, faultPhaseMs: 3_000 });
    const b = await runSimulation({ seed: 12, faultPhaseMs: 3_000 });
    expect(a.traceHash).not.toBe(b.traceHash);
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: faults, then heal; no acknowledged write lost, histories linearizable, the bank's total kept, progress after the heal`, async () => {
      const r = await runSimulation({ seed, faultPhaseMs: 10_000 });
      expect(r.ok, describeResult(r)).toBe(true);
      expect(r.acknowledgedWrites, "some writes were acknowledged").toBeGreaterThan(0);
      expect(r.bank.committed, "some transfers committed").toBeGreaterThan(0);
      expect(r.bank.reads, "some snapshot reads of the bank finished").toBeGreaterThan(0);
      expect(r.raftApplies, "the raft checker compared applied entries").toBeGreaterThan(0);
      console.log(
        `seed ${seed}: ${r.confChanges} conf changes, ${r.operatorSteps} operator steps, ${r.regions} regions`,
      );
    });
  }
});
