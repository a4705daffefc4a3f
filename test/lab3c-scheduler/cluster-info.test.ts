// Lab 3C: TinyKV's scheduler/server/cluster_test.go cases that read the cluster's region and
// store information back after heartbeats, one test per course test.
import { beforeEach, describe, expect, it } from "vitest";
import { Region } from "../../src/proto/metapb.js";
import type { ClusterModel } from "../../src/scheduler/core/cluster.js";
import type { RegionInfo } from "../../src/scheduler/core/region-info.js";
import { withRegion } from "../../src/scheduler/core/region-info.js";
import { checkRegions, enc, setUpTestCluster } from "./heartbeat-fixture.js";

describe("lab3c cluster info after heartbeats", () => {
  let c: ClusterModel;
  let regions: RegionInfo[];

  beforeEach(() => {
    ({ c, regions } = setUpTestCluster());
  });

  /** Every store's statistics as the store info holds them, next to the region index's own count. */
  function expectStoresInfoMatchRegions(): void {
    for (const s of c.getStores()) {
      const { leaderCount, regionCount, leaderSize, regionSize } = c.regions.statsOf(s.id);
      expect(
        { leaderCount: s.leaderCount, regionCount: s.regionCount, leaderSize: s.leaderSize, regionSize: s.regionSize },
        `store ${s.id}: store info vs region index`,
      ).toEqual({ leaderCount, regionCount, leaderSize, regionSize });
    }
  }

  it("TestRegionRemovePendingPeer3C: a pending peer that catches up is no longer counted", () => {
    for (let i = 0; i < regions.length; i++) {
      const pending = regions[i]!.meta.peers[i % regions[i]!.meta.peers.length]!;
      regions[i] = withRegion(regions[i]!, { pendingPeers: [pending] });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      const holder = c.getStore(pending.storeId)!;
      expect(holder.pendingPeerCount, `store ${holder.id} with region ${i}'s pending peer`).toBe(1);

      regions[i] = withRegion(regions[i]!, { pendingPeers: [] });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
    for (const s of c.getStores()) expect(s.pendingPeerCount, `store ${s.id} pending peers`).toBe(0);
  });

  it("TestRegionAddBackPeers3C: a region reported with one peer, then with all three (same epoch), is whole again", () => {
    for (let i = 0; i < regions.length; i++) {
      const origin = regions[i]!;
      const onePeer = Region.create({ ...origin.meta, peers: origin.meta.peers.slice(0, 1) });
      regions[i] = withRegion(origin, { meta: onePeer });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      for (const p of origin.meta.peers.slice(1)) {
        const followed = c.regions.followerRegions(p.storeId).map((r) => r.meta.id);
        expect(followed, `store ${p.storeId} lost its peer of region ${i}`).not.toContain(origin.meta.id);
      }

      regions[i] = origin;
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      expect(c.getRegion(origin.meta.id)!.meta.peers.map((p) => p.id)).toEqual(origin.meta.peers.map((p) => p.id));
    }
    for (const s of c.getStores()) expect(s.regionCount, `store ${s.id} holds a peer of every region again`).toBe(3);
  });

  it("TestRegionGetRegions3C: the cluster lists every region as last reported, and their metas", () => {
    const listed = c.regions.all();
    expect(listed.map((r) => r.meta.id).sort()).toEqual(regions.map((r) => r.meta.id).sort());
    for (const r of listed) {
      const want = regions[Number(r.meta.id)]!;
      expect(enc(r.meta), `region ${r.meta.id} meta`).toBe(enc(want.meta));
      expect(r.leader, `region ${r.meta.id} leader`).toEqual(want.leader);
      expect(r.pendingPeers, `region ${r.meta.id} pending peers`).toEqual(want.pendingPeers);
    }
    expect(listed.map((r) => enc(r.meta))).toEqual(regions.map((r) => enc(r.meta)));
  });

  it("TestRegionGetStoresInfo3C: each store's leader and region counts and sizes agree with its regions", () => {
    expectStoresInfoMatchRegions();
    // And they keep agreeing as heartbeats move leaders and change sizes.
    for (let i = 0; i < regions.length; i++) {
      regions[i] = withRegion(regions[i]!, { leader: regions[i]!.meta.peers[1], approximateSize: 10 * (i + 1) });
      c.processRegionHeartbeat(regions[i]!);
      expectStoresInfoMatchRegions();
    }
    const totalLeaderSize = c.getStores().reduce((sum, s) => sum + s.leaderSize, 0);
    expect(totalLeaderSize, "every region's size counted once, on its leader's store").toBe(10 + 20 + 30);
  });
});
