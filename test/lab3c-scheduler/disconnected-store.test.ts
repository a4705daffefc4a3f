// Review: a store that stopped heartbeating a minute ago (disconnected: TinyKV/PD's 20 s) but is not
// yet "down" (30 min) is still picked as the target of leader transfers and peer moves. After a
// store dies its leaders move away, so it has the fewest leaders and the least data: balance-leader
// keeps handing it leaderships (each transfer blocks the region's writes until it times out) and
// balance-region adds voters on it that can never catch up. TinyKV's StoreStateFilter refuses
// disconnected stores as transfer-leader targets; PD also refuses them as move-region targets.
import { describe, expect, it } from "vitest";
import { BalanceLeaderScheduler } from "../../src/scheduler/schedulers/balance-leader.js";
import { BalanceRegionScheduler } from "../../src/scheduler/schedulers/balance-region.js";
import { MockCluster } from "./mock-cluster.js";

const silentFor = (tc: MockCluster, store: number, ms: number) => {
  tc.cluster.getStore(BigInt(store))!.lastHeartbeatMs = tc.now - ms;
};

describe("disconnected stores", () => {
  it("balance-leader does not hand a leadership to a store silent for a minute", () => {
    const lb = new BalanceLeaderScheduler({ tolerance: 2 });
    const tc = new MockCluster();
    tc.addLeaderStore(1, 16);
    tc.addLeaderStore(2, 0);
    tc.addLeaderStore(3, 5);
    tc.addLeaderRegion(1, 1, 2, 3);
    silentFor(tc, 2, 60_000);
    const op = lb.schedule(tc.cluster, tc.oc);
    expect(op?.step(0), "leader handed to silent store 2").not.toMatchObject({ toStore: 2n });
  });

  it("balance-region does not add a peer on a store silent for a minute", () => {
    const sb = new BalanceRegionScheduler({ regionScheduleLimit: 64 });
    const tc = new MockCluster();
    tc.addRegionStore(1, 16);
    tc.addRegionStore(2, 15);
    tc.addRegionStore(3, 14);
    tc.addRegionStore(4, 0);
    tc.addRegionStore(5, 8);
    tc.addLeaderRegion(1, 1, 2, 3);
    silentFor(tc, 4, 60_000);
    const op = sb.schedule(tc.cluster, tc.oc, tc.allocPeerId);
    expect(op?.step(0), "peer added on silent store 4").not.toMatchObject({ toStore: 4n });
  });
});
