// Review: when an operator must move the leadership off a store (a drained leader, a moved peer),
// pickLeaderTarget takes the follower store with the fewest leaders even when that follower is
// pending (still catching up, without the log): the transfer stalls the region instead of moving.
import { describe, expect, it } from "vitest";
import { ReplicaChecker } from "../../src/scheduler/schedulers/replica-checker.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { MockCluster } from "./mock-cluster.js";

describe("leader target of a move", () => {
  it("draining the leader's store hands the leadership to an up-to-date follower, not a pending one", () => {
    const tc = new MockCluster();
    for (const s of [1, 2, 3]) tc.addRegionStore(s, 5);
    tc.addRegionStore(4, 1);
    tc.cluster.getStore(2n)!.leaderCount = 0;
    tc.cluster.getStore(3n)!.leaderCount = 5;
    tc.setStoreOffline(1);
    const r = tc.addLeaderRegion(1, 1, 2, 3);
    const region = withRegion(r, { pendingPeers: [r.meta.peers[1]!] }); // the peer on store 2
    tc.putRegion(region);
    const op = new ReplicaChecker().check(tc.cluster, region, tc.allocPeerId)!;
    expect(op.steps.map((s) => s.type)).toEqual(["add_peer", "transfer_leader", "remove_peer"]);
    expect(op.steps[1], "leadership handed to the pending peer on store 2").not.toMatchObject({ toStore: 2n });
  });
});
