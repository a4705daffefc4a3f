// balance-leader (TinyKV testBalanceLeaderSchedulerSuite scenarios).
import { describe, expect, it } from "vitest";
import { BalanceLeaderScheduler } from "../../src/scheduler/schedulers/balance-leader.js";
import { OpKind } from "../../src/scheduler/schedule/operator.js";
import { MockCluster } from "./mock-cluster.js";

// The mock cluster's tolerance: TinyKV's mock options use a tolerant size ratio of 2.5 (int 2).
const lb = new BalanceLeaderScheduler({ tolerance: 2 });

function setup(leaders: number[], regionLeaderStore: number, followers: number[]): MockCluster {
  const tc = new MockCluster();
  for (const [i, n] of leaders.entries()) tc.addLeaderStore(i + 1, n);
  tc.addLeaderRegion(1, regionLeaderStore, ...followers);
  return tc;
}

describe("balance-leader", () => {
  it("TestBalanceLimit: moves only when the gap is larger than the tolerance on both sides", () => {
    // Leaders 1 0 0 0, region 1 led by store 1: not worth it.
    let tc = setup([1, 0, 0, 0], 1, [2, 3, 4]);
    expect(lb.schedule(tc.cluster, tc.oc)).toBeUndefined();
    // 16 0 0 0: move a leader off store 1.
    tc.updateLeaderCount(1, 16);
    const op = lb.schedule(tc.cluster, tc.oc)!;
    expect(op).toBeDefined();
    expect(op.length).toBe(1);
    expect(op.step(0)).toMatchObject({ type: "transfer_leader", fromStore: 1n });
    expect(op.kind & OpKind.Leader).toBe(OpKind.Leader);
    expect(op.kind & OpKind.Region).toBe(0);

    // 7 8 9 10, region led by 4: balanced enough.
    tc = setup([7, 8, 9, 10], 4, [1, 2, 3]);
    expect(lb.schedule(tc.cluster, tc.oc)).toBeUndefined();
    // 7 8 9 16: move from store 4 to the follower store with the fewest leaders (1).
    tc.updateLeaderCount(4, 16);
    expect(lb.schedule(tc.cluster, tc.oc)?.step(0)).toEqual({ type: "transfer_leader", fromStore: 4n, toStore: 1n });
  });

  it("TestBalanceLeaderTolerance: the default tolerance (5) needs a gap above 10", () => {
    const def = new BalanceLeaderScheduler();
    const tc = setup([10, 0, 0], 1, [2, 3]);
    expect(def.schedule(tc.cluster, tc.oc)).toBeUndefined();
    tc.updateLeaderCount(1, 11);
    expect(def.schedule(tc.cluster, tc.oc)?.step(0)).toMatchObject({ fromStore: 1n });
  });

  it("TestTransferLeaderIn: pulls a leader into the emptiest store when the source has no movable leaders", () => {
    // Store 4 has the most leaders but leads no region we know; region 1 (led by 3) has a follower on 1.
    const tc = setup([0, 10, 14, 20], 3, [1, 2]);
    expect(lb.schedule(tc.cluster, tc.oc)?.step(0)).toEqual({ type: "transfer_leader", fromStore: 3n, toStore: 1n });
  });

  it("never targets an offline, down or busy store", () => {
    const tc = setup([16, 0, 0, 0], 1, [2, 3, 4]);
    tc.setStoreOffline(2);
    tc.setStoreDown(3);
    tc.setStoreBusy(4, true);
    expect(lb.schedule(tc.cluster, tc.oc)).toBeUndefined();
    tc.setStoreBusy(4, false);
    expect(lb.schedule(tc.cluster, tc.oc)?.step(0)).toEqual({ type: "transfer_leader", fromStore: 1n, toStore: 4n });
  });

  it("respects the leader schedule limit", () => {
    const tc = setup([16, 0, 0], 1, [2, 3]);
    const one = new BalanceLeaderScheduler({ tolerance: 2, leaderScheduleLimit: 1 });
    const op = one.schedule(tc.cluster, tc.oc)!;
    tc.oc.add(op);
    tc.addLeaderRegion(2, 1, 2, 3);
    expect(one.schedule(tc.cluster, tc.oc)).toBeUndefined();
  });

  it("does not move a leader across a gap of one, which would only flip it back next round", () => {
    // Leaders 1 0 0 with no tolerance: moving gives 0 1 0, and the same rule would move it back.
    const none = new BalanceLeaderScheduler({ tolerance: 0 });
    const tc = setup([1, 0, 0], 1, [2, 3]);
    expect(none.schedule(tc.cluster, tc.oc), "a transfer that leaves the gap at one").toBeUndefined();
    tc.updateLeaderCount(1, 2);
    expect(none.schedule(tc.cluster, tc.oc)?.step(0)).toMatchObject({ fromStore: 1n });
  });

  it("counts running transfers, so concurrent operators stop once the counts are even", () => {
    // Store 1 leads four regions, store 2 none: two transfers even them out, not four.
    const none = new BalanceLeaderScheduler({ tolerance: 0 });
    const tc = new MockCluster();
    tc.addLeaderStore(1, 4);
    tc.addLeaderStore(2, 0);
    for (let id = 1; id <= 4; id++) tc.addLeaderRegion(id, 1, 2);
    const ops = [];
    for (let op = none.schedule(tc.cluster, tc.oc); op; op = none.schedule(tc.cluster, tc.oc)) {
      tc.oc.add(op);
      ops.push(op);
      expect(ops.length, "operators scheduled before the influence evens the counts").toBeLessThan(5);
    }
    expect(ops.map((op) => op.step(0))).toEqual([
      { type: "transfer_leader", fromStore: 1n, toStore: 2n },
      { type: "transfer_leader", fromStore: 1n, toStore: 2n },
    ]);
  });
});
