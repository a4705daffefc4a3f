// Proof that the simulation's checkers bite: each deliberate bug (src/util/deliberate-bugs.ts,
// test-only switches) must make a run fail within a stated number of seeds, with the fault mix
// that exposes it. Seeds run in order and the test stops at the first failing one, so a bite
// costs a few runs. A run that fails prints its report (seed, faults, trace tail, the smallest
// failing piece of history); replay one with `SEED=<n> DELIBERATE_BUGS=<bug> FAULTS=<kinds> make sim`.
// Two bugs need a scripted schedule, because seeded faults rarely open their window:
// forget-vote-on-restart (forget-vote.test.ts) and read-without-read-index (stale-read.test.ts;
// seeded pause faults caught it only while balance-leader ping-ponged leaders every 100 ms).
import { describe, expect, it } from "vitest";
import type { DeliberateBug } from "../../../src/util/deliberate-bugs.js";
import { describeBankResult, runBankSimulation } from "./bank-sim.js";
import type { FaultKind } from "./faults.js";
import { FAULT_KINDS } from "./faults.js";
import type { SimResult } from "./simulation.js";
import { describeResult, runSimulation } from "./simulation.js";

interface Bite {
  bug: DeliberateBug;
  /** Seeds 1..within are tried; one must fail. */
  within: number;
  faultKinds: FaultKind[];
  faultPhaseMs: number;
  clients?: number;
  keys?: number;
  /** What the failure says: the checker that caught it. */
  caughtBy: RegExp;
  /** What was measured when the bound was chosen (the same options, seeds 1..n). */
  measured: string;
}

const BITES: Bite[] = [
  {
    // A power loss drops the unsynced tail of the raft log and hard state while the kv engine
    // kept entries applied from it: the restart finds a commit index past the log's end.
    bug: "skip-raft-fsync",
    within: 3,
    faultKinds: ["power-loss"],
    faultPhaseMs: 4_000,
    caughtBy: /state\.commit \d+ is out of range|lost|livelock|not linearizable/,
    measured: "seeds 1-3 of 1-3 fail (raft's commit index past the log's end at a restart)",
  },
  {
    // A leader and a follower group the same entries into turns differently, so a swap that
    // compares against the turn's start decides differently on each: their change records differ.
    bug: "cas-compares-turn-start",
    within: 3,
    faultKinds: [...FAULT_KINDS],
    faultPhaseMs: 20_000,
    caughtBy: /applied differently|not linearizable|lost/,
    measured: "seeds 1, 2, 3 of 1-3 fail, 20 of 1-30 (two replicas' CAS outcomes at one index differ)",
  },
];

describe("the checkers catch deliberate bugs", () => {
  for (const b of BITES) {
    it(`${b.bug} is caught within ${b.within} seeds (${b.faultKinds.join(", ")} faults)`, async () => {
      let caught: SimResult | undefined;
      for (let seed = 1; seed <= b.within && !caught; seed++) {
        const r = await runSimulation({
          seed,
          deliberateBugs: new Set([b.bug]),
          faultKinds: b.faultKinds,
          faultPhaseMs: b.faultPhaseMs,
          clients: b.clients,
          keys: b.keys,
        });
        if (!r.ok) caught = r;
      }
      expect(caught, `${b.bug}: no seed of 1..${b.within} failed (measured: ${b.measured})`).toBeDefined();
      expect(caught!.failures.join("\n"), describeResult(caught!)).toMatch(b.caughtBy);
    }, 180_000);
  }

  // The bank's clients start their transfers together, so prewrites of overlapping keys
  // contend: with latches released before the write applies, two prewrites both pass their
  // lock check, one lock overwrites the other, and a committed transfer loses its secondary.
  it("release-latches-before-apply is caught within 3 seeds by the bank's total; without it the bank balances", async () => {
    const bug = new Set<DeliberateBug>(["release-latches-before-apply"]);
    let caught = false;
    for (let seed = 1; seed <= 3 && !caught; seed++) {
      const r = await runBankSimulation({ seed, durationMs: 1_000, deliberateBugs: bug });
      if (!r.ok) {
        caught = true;
        expect(r.failures.join("\n"), describeBankResult(r)).toMatch(/balances sum to \d+, not \d+/);
      }
    }
    expect(caught, "no bank seed of 1..3 failed (measured: seeds 1-5 of 1-5 fail, each within 1 simulated s)").toBe(
      true,
    );
    const control = await runBankSimulation({ seed: 1, durationMs: 1_000 });
    expect(control.ok, describeBankResult(control)).toBe(true);
    expect(control.committed, "transfers committed").toBeGreaterThan(0);
  }, 120_000);
});
