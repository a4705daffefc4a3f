import { describe, expect, it } from "vitest";
import { SIM_EPOCH_MS, SimRuntime } from "./sim-runtime.js";

describe("a node's view of the simulated clock", () => {
  it("reads the shared clock plus its own offset; a step moves its reading, not its timers", async () => {
    const sim = new SimRuntime(1);
    const a = sim.nodeClock("a");
    const b = sim.nodeClock("b");
    expect(sim.nodeClock("a"), "one view per name").toBe(a);
    a.step(-3_000);
    b.step(250);
    expect(a.now()).toBe(SIM_EPOCH_MS - 3_000);
    expect(b.now()).toBe(SIM_EPOCH_MS + 250);
    const fired: Array<[string, number]> = [];
    a.setTimeout(() => fired.push(["a", sim.elapsedMs]), 100);
    b.setTimeout(() => fired.push(["b", sim.elapsedMs]), 100);
    a.step(10_000); // a jump forward does not make a's timer fire early
    await sim.runUntil(1_000);
    expect(fired).toEqual([
      ["a", 100],
      ["b", 100],
    ]);
    expect(a.now()).toBe(SIM_EPOCH_MS + 1_000 + 7_000);
  });

  it("holds a paused node's timers and deferrals and runs them in order on resume, each interval once", async () => {
    const sim = new SimRuntime(1);
    const node = sim.nodeClock("n");
    const seen: string[] = [];
    node.setInterval(() => seen.push(`tick@${sim.elapsedMs}`), 10);
    sim.schedule("pause", 25, () => {
      node.pause();
      node.defer(() => seen.push(`deferred@${sim.elapsedMs}`));
      const cancelled = node.setTimeout(() => seen.push("cancelled timer ran"), 5);
      sim.schedule("cancel", 10, () => node.clearTimeout(cancelled));
    });
    sim.schedule("resume", 95, () => node.resume());
    await sim.runUntil(112);
    expect(seen).toEqual(["tick@10", "tick@20", "deferred@95", "tick@95", "tick@100", "tick@110"]);
  });
});
