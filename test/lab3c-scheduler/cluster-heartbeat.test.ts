// Lab 3C: region heartbeat processing (TinyKV scheduler/server/cluster_test.go, *3C cases).
import { beforeEach, describe, expect, it } from "vitest";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import { ClusterModel } from "../../src/scheduler/core/cluster.js";
import { StaleRegionError } from "../../src/scheduler/errors.js";
import type { RegionInfo } from "../../src/scheduler/core/region-info.js";
import { newRegionInfo, withRegion } from "../../src/scheduler/core/region-info.js";
import { checkRegions, epoch, setUpTestCluster } from "./heartbeat-fixture.js";

describe("lab3c region heartbeats", () => {
  let c: ClusterModel;
  let regions: RegionInfo[];

  beforeEach(() => {
    ({ c, regions } = setUpTestCluster());
  });

  it("TestRegionNotUpdate3C: identical heartbeats succeed and change nothing", () => {
    for (const r of regions) expect(c.processRegionHeartbeat(r).changed).toBe(false);
    checkRegions(c, regions);
  });

  it("TestRegionUpdateVersion3C / TestRegionUpdateVersionAndConfver3C", () => {
    for (let i = 0; i < regions.length; i++) {
      regions[i] = epoch(regions[i]!, { version: 1n });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      regions[i] = epoch(regions[i]!, { version: 1n, confVer: 1n });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
  });

  it("TestRegionWithStaleVersion3C: older version with newer conf_ver is rejected", () => {
    for (let i = 0; i < regions.length; i++) {
      const orig = regions[i]!;
      regions[i] = epoch(orig, { version: 1n });
      c.processRegionHeartbeat(regions[i]!);
      const stale = epoch(orig, { confVer: 1n });
      expect(() => c.processRegionHeartbeat(stale)).toThrow(StaleRegionError);
      checkRegions(c, regions);
    }
  });

  it("TestRegionWithStaleConfVer3C: the original epoch after a conf change is rejected", () => {
    for (let i = 0; i < regions.length; i++) {
      const orig = regions[i]!;
      regions[i] = epoch(orig, { confVer: 1n });
      c.processRegionHeartbeat(regions[i]!);
      expect(() => c.processRegionHeartbeat(orig)).toThrow(/stale/);
      checkRegions(c, regions);
    }
  });

  it("TestRegionAddPendingPeer3C: pending-peer counts follow, and drop to 0 once all clear", () => {
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i]!;
      const pending = r.meta.peers[1]!;
      regions[i] = withRegion(r, { pendingPeers: [pending] });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      expect(c.getStore(pending.storeId)!.pendingPeerCount).toBeGreaterThan(0);
    }
    for (let i = 0; i < regions.length; i++) {
      regions[i] = withRegion(regions[i]!, { pendingPeers: [] });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
    for (const s of c.getStores()) expect(s.pendingPeerCount, `store ${s.id} pending peers`).toBe(0);
  });

  it("TestRegionRemovePeers3C: peer lists shrink, then all grow back (same epoch)", () => {
    const orig = [...regions];
    for (let i = 0; i < regions.length; i++) {
      regions[i] = withRegion(regions[i]!, {
        meta: Region.create({ ...regions[i]!.meta, peers: regions[i]!.meta.peers.slice(0, 1) }),
      });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
    for (let i = 0; i < regions.length; i++) {
      regions[i] = orig[i]!;
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
  });

  it("TestRegionChangeLeader3C and TestRegionChangeApproximateSize3C", () => {
    for (let i = 0; i < regions.length; i++) {
      regions[i] = withRegion(regions[i]!, { leader: regions[i]!.meta.peers[1] });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
      regions[i] = withRegion(regions[i]!, { approximateSize: 7 * (i + 1) });
      c.processRegionHeartbeat(regions[i]!);
      checkRegions(c, regions);
    }
    expect(c.getStore(regions[0]!.meta.peers[1]!.storeId)!.leaderSize).toBeGreaterThan(0);
  });

  it("TestRegionCounts3C: every store holds 3 regions, 1 leader", () => {
    for (const s of c.getStores()) {
      expect(s.regionCount).toBe(3);
      expect(s.leaderCount).toBe(1);
    }
    checkRegions(c, regions);
  });

  it("TestRegionGetStores3C: leader/follower regions per store", () => {
    for (const r of regions) {
      const leaderStore = r.leader!.storeId;
      expect(c.regions.leaderRegions(leaderStore).map((x) => x.meta.id)).toContain(r.meta.id);
      for (const p of r.meta.peers.slice(1))
        expect(c.regions.followerRegions(p.storeId).map((x) => x.meta.id)).toContain(r.meta.id);
    }
  });

  it("rejects a new region id whose range overlaps a region with a newer epoch", () => {
    const intruder = newRegionInfo(
      Region.create({
        id: 99n,
        startKey: Buffer.from([0]),
        endKey: Buffer.from([2]),
        regionEpoch: { version: 1n, confVer: 5n },
      }),
    );
    expect(() => c.processRegionHeartbeat(intruder)).toThrow(StaleRegionError);
    checkRegions(c, regions);
    const merged = newRegionInfo(
      Region.create({
        id: 99n,
        startKey: Buffer.from([0]),
        endKey: Buffer.from([2]),
        regionEpoch: { version: 3n, confVer: 2n },
        peers: regions[0]!.meta.peers,
      }),
      regions[0]!.leader,
    );
    expect(
      c
        .processRegionHeartbeat(merged)
        .overlapped.map((r) => r.meta.id)
        .sort(),
    ).toEqual([0n, 1n]);
    expect(c.getRegion(0n)).toBeUndefined();
    expect(c.getRegion(1n)).toBeUndefined();
    checkRegions(c, [merged, regions[2]!]);
  });
});

describe("lab3c heartbeat split and merge", () => {
  it("a known region whose range grows cannot evict a region with a newer version", () => {
    const c = new ClusterModel();
    const r1 = newRegionInfo(
      Region.create({ id: 1n, endKey: Buffer.from("m"), regionEpoch: { version: 2n, confVer: 1n } }),
    );
    const r2 = newRegionInfo(
      Region.create({ id: 2n, startKey: Buffer.from("m"), regionEpoch: { version: 5n, confVer: 1n } }),
    );
    c.processRegionHeartbeat(r1);
    c.processRegionHeartbeat(r2);
    const grown = newRegionInfo(Region.create({ id: 1n, regionEpoch: { version: 3n, confVer: 1n } }));
    expect(() => c.processRegionHeartbeat(grown)).toThrow(StaleRegionError);
    expect(c.getRegionByKey(Buffer.from("z"))?.meta.id).toBe(2n);
    const merged = newRegionInfo(Region.create({ id: 1n, regionEpoch: { version: 6n, confVer: 1n } }));
    expect(c.processRegionHeartbeat(merged).overlapped.map((r) => r.meta.id)).toEqual([2n]);
    expect(c.getRegionByKey(Buffer.from("z"))?.meta.id).toBe(1n);
  });

  it("TestHeartbeatSplit3C: splits reported out of order", () => {
    const c = new ClusterModel();
    let r1 = newRegionInfo(Region.create({ id: 1n, regionEpoch: { version: 1n, confVer: 1n } }));
    c.processRegionHeartbeat(r1);
    expect(c.getRegionByKey(Buffer.from("foo"))?.meta.id).toBe(1n);

    // split 1 -> 2:[nil,m) 1:[m,nil); 2 reports first
    r1 = withRegion(r1, {
      meta: Region.create({ ...r1.meta, startKey: Buffer.from("m"), regionEpoch: { version: 2n, confVer: 1n } }),
    });
    const r2 = newRegionInfo(
      Region.create({ id: 2n, endKey: Buffer.from("m"), regionEpoch: { version: 1n, confVer: 1n } }),
    );
    c.processRegionHeartbeat(r2);
    expect(c.getRegionByKey(Buffer.from("a"))?.meta.id).toBe(2n);
    expect(c.getRegionByKey(Buffer.from("z")), "[m, +inf) is unknown until region 1 reports").toBeUndefined();
    c.processRegionHeartbeat(r1);
    expect(c.getRegionByKey(Buffer.from("z"))?.meta.id).toBe(1n);

    // split 1 -> 3:[m,q) 1:[q,nil); 1 reports first
    r1 = withRegion(r1, {
      meta: Region.create({ ...r1.meta, startKey: Buffer.from("q"), regionEpoch: { version: 3n, confVer: 1n } }),
    });
    const r3 = newRegionInfo(
      Region.create({
        id: 3n,
        startKey: Buffer.from("m"),
        endKey: Buffer.from("q"),
        regionEpoch: { version: 1n, confVer: 1n },
      }),
    );
    c.processRegionHeartbeat(r1);
    expect(c.getRegionByKey(Buffer.from("z"))?.meta.id).toBe(1n);
    expect(c.getRegionByKey(Buffer.from("a"))?.meta.id).toBe(2n);
    expect(c.getRegionByKey(Buffer.from("n"))).toBeUndefined();
    c.processRegionHeartbeat(r3);
    expect(c.getRegionByKey(Buffer.from("n"))?.meta.id).toBe(3n);
  });

  it("TestRegionSplitAndMerge3C: rounds of splits and merges keep every region findable", () => {
    const c = new ClusterModel();
    const peers = [Peer.create({ id: 1n, storeId: 1n })];
    c.putStore({ id: 1n, address: "s1", state: StoreState.Up, statusAddress: "" });
    // Regions cover the key space [0, 2^32) in equal pieces; keys are 4-byte big-endian numbers.
    const key = (n: number): Buffer => {
      if (n >= 2 ** 32) return Buffer.alloc(0);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    let regions: RegionInfo[] = [
      newRegionInfo(Region.create({ id: 1n, regionEpoch: { version: 1n, confVer: 1n }, peers }), peers[0]),
    ];
    let nextId = 2n;
    let bounds = [0, 2 ** 32];
    const heartbeatAll = () => {
      for (const r of regions) c.processRegionHeartbeat(r);
      expect(c.regions.size).toBe(regions.length);
      for (let i = 0; i < regions.length; i++) {
        expect(c.getRegion(regions[i]!.meta.id)?.meta.id).toBe(regions[i]!.meta.id);
        expect(c.getRegionByKey(key(bounds[i]!))?.meta.id, `key at bound ${i}`).toBe(regions[i]!.meta.id);
      }
    };
    const split = () => {
      const out: RegionInfo[] = [];
      const nb: number[] = [];
      regions.forEach((r, i) => {
        const lo = bounds[i]!;
        const hi = bounds[i + 1]!;
        const mid = lo + Math.floor((hi - lo) / 2);
        const v = r.meta.regionEpoch!.version + 1n;
        out.push(
          withRegion(r, {
            meta: Region.create({
              ...r.meta,
              startKey: key(lo),
              endKey: key(mid),
              regionEpoch: { version: v, confVer: 1n },
            }),
          }),
        );
        out.push(
          newRegionInfo(
            Region.create({
              id: nextId++,
              startKey: key(mid),
              endKey: key(hi),
              regionEpoch: { version: v, confVer: 1n },
              peers,
            }),
            peers[0],
          ),
        );
        nb.push(lo, mid);
      });
      nb.push(2 ** 32);
      regions = out;
      bounds = nb;
    };
    const merge = () => {
      const out: RegionInfo[] = [];
      const nb: number[] = [];
      for (let i = 0; i < regions.length; i += 2) {
        const left = regions[i]!;
        const right = regions[i + 1];
        if (!right) {
          out.push(left);
          nb.push(bounds[i]!);
          continue;
        }
        const v =
          (left.meta.regionEpoch!.version > right.meta.regionEpoch!.version ? left : right).meta.regionEpoch!.version +
          1n;
        out.push(
          withRegion(left, {
            meta: Region.create({ ...left.meta, endKey: right.meta.endKey, regionEpoch: { version: v, confVer: 1n } }),
          }),
        );
        nb.push(bounds[i]!);
      }
      nb.push(2 ** 32);
      regions = out;
      bounds = nb;
    };
    for (let i = 0; i < 7; i++) {
      split();
      heartbeatAll();
    }
    expect(regions.length).toBe(128);
    for (let i = 0; i < 7; i++) {
      merge();
      heartbeatAll();
    }
    expect(regions.length).toBe(1);
    for (let i = 0; i < 14; i++) {
      if (i % 3 === 2) merge();
      else split();
      heartbeatAll();
    }
    expect(c.getStore(1n)!.regionCount).toBe(regions.length);
  });
});
