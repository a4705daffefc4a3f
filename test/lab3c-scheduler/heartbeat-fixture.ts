// The fixture of TinyKV's scheduler/server/cluster_test.go (setUpTestCluster, checkRegions),
// shared by the lab 3C heartbeat tests.
import { expect } from "vitest";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import { ClusterModel } from "../../src/scheduler/core/cluster.js";
import type { RegionInfo } from "../../src/scheduler/core/region-info.js";
import { newRegionInfo, withRegion } from "../../src/scheduler/core/region-info.js";

export const enc = (r: Region): string => Buffer.from(Region.encode(r).finish()).toString("hex");

export const N_STORES = 3;
export const N_REGIONS = 3;

export function fixtureRegions(): RegionInfo[] {
  const out: RegionInfo[] = [];
  for (let i = 0; i < N_REGIONS; i++) {
    const peers = [0, 1, 2].map((j) => Peer.create({ id: BigInt(3 * i + j), storeId: BigInt((i + j) % N_STORES) }));
    const meta = Region.create({
      id: BigInt(i),
      startKey: Buffer.from([i]),
      endKey: Buffer.from([i + 1]),
      regionEpoch: { confVer: 2n, version: 2n },
      peers,
    });
    out.push(newRegionInfo(meta, peers[0]));
  }
  return out;
}

export function epoch(r: RegionInfo, d: { version?: bigint; confVer?: bigint }): RegionInfo {
  const e = r.meta.regionEpoch!;
  return withRegion(r, {
    meta: Region.create({
      ...r.meta,
      regionEpoch: { version: e.version + (d.version ?? 0n), confVer: e.confVer + (d.confVer ?? 0n) },
    }),
  });
}

/** Checks the cluster's view matches `regions` (by id and by key) and store stats match the tree. */
export function checkRegions(c: ClusterModel, regions: RegionInfo[]): void {
  for (const r of regions) {
    const byId = c.getRegion(r.meta.id);
    expect(byId, `region ${r.meta.id} by id`).toBeDefined();
    expect(enc(byId!.meta), `region ${r.meta.id} meta`).toEqual(enc(r.meta));
    expect(byId!.leader?.id).toBe(r.leader?.id);
    expect(c.getRegionByKey(r.meta.startKey)?.meta.id, `region ${r.meta.id} by key`).toBe(r.meta.id);
  }
  const expected = new Map<
    bigint,
    { leaders: number; regions: number; pending: number; leaderSize: number; regionSize: number }
  >();
  for (const r of c.regions.all()) {
    for (const p of r.meta.peers) {
      const e = expected.get(p.storeId) ?? { leaders: 0, regions: 0, pending: 0, leaderSize: 0, regionSize: 0 };
      e.regions++;
      e.regionSize += r.approximateSize;
      if (r.leader?.storeId === p.storeId) {
        e.leaders++;
        e.leaderSize += r.approximateSize;
      }
      if (r.pendingPeers.some((pp) => pp.id === p.id)) e.pending++;
      expected.set(p.storeId, e);
    }
  }
  for (const s of c.getStores()) {
    const e = expected.get(s.id) ?? { leaders: 0, regions: 0, pending: 0, leaderSize: 0, regionSize: 0 };
    expect({
      id: s.id,
      l: s.leaderCount,
      r: s.regionCount,
      p: s.pendingPeerCount,
      ls: s.leaderSize,
      rs: s.regionSize,
    }).toEqual({
      id: s.id,
      l: e.leaders,
      r: e.regions,
      p: e.pending,
      ls: e.leaderSize,
      rs: e.regionSize,
    });
  }
}

/** TinyKV's setUpTestCluster: 3 stores, then 3 regions of 3 peers heartbeated one by one. */
export function setUpTestCluster(): { c: ClusterModel; regions: RegionInfo[] } {
  const c = new ClusterModel();
  for (let i = 0; i < N_STORES; i++)
    c.putStore({ id: BigInt(i), address: `s${i}`, state: StoreState.Up, statusAddress: "" });
  const regions = fixtureRegions();
  for (let i = 0; i < regions.length; i++) {
    c.processRegionHeartbeat(regions[i]!);
    checkRegions(c, regions.slice(0, i + 1));
  }
  return { c, regions };
}
