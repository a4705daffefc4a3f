// Review: balance-leader must not hand a region's leadership to a peer that is still catching up
// (pending). TinyKV/PD pick only healthy regions (core.HealthRegion: no pending peers) for
// balance-leader; a pending peer lacks the log, so the transfer stalls the region (the leader
// refuses proposals while transferring) and times out.
import { describe, expect, it } from "vitest";
import { BalanceLeaderScheduler } from "../../src/scheduler/schedulers/balance-leader.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { MockCluster } from "./mock-cluster.js";

describe("balance-leader and pending peers", () => {
  it("transfer-out never targets a pending follower", () => {
    const lb = new BalanceLeaderScheduler({ tolerance: 2 });
    const tc = new MockCluster();
    tc.addLeaderStore(1, 16);
    tc.addLeaderStore(2, 0);
    tc.addLeaderStore(3, 5);
    const r = tc.addLeaderRegion(1, 1, 2, 3);
    // The follower on store 2 (fewest leaders) is still catching up.
    tc.putRegion(withRegion(r, { pendingPeers: [r.meta.peers[1]!] }));
    const op = lb.schedule(tc.cluster, tc.oc);
    expect(op?.step(0), "leader handed to the pending peer on store 2").not.toMatchObject({ toStore: 2n });
  });

  it("transfer-in never pulls the leadership into a pending peer", () => {
    const lb = new BalanceLeaderScheduler({ tolerance: 2 });
    const tc = new MockCluster();
    tc.addLeaderStore(1, 0);
    tc.addLeaderStore(2, 10);
    tc.addLeaderStore(3, 20);
    // Store 3 leads a lot but none of the regions we know; region 1 is led by 2 with a pending peer on 1.
    const r = tc.addLeaderRegion(1, 2, 1);
    tc.putRegion(withRegion(r, { pendingPeers: [r.meta.peers[1]!] }));
    const op = lb.schedule(tc.cluster, tc.oc);
    expect(op?.step(0), "leader pulled into the pending peer on store 1").toBeUndefined();
  });
});
