// Where the client sends a replica read: to the region's followers in turn. A region cached with
// one peer (before the scheduler added its replicas) is asked for again once, so the reads do not
// all go to the leader for as long as nothing else reloads it. No process, no socket.
import { describe, expect, it } from "vitest";
import type { KvConnection } from "../../src/client/index.js";
import { RegionCache } from "../../src/client/region-cache.js";
import type { Region } from "../../src/proto/metapb.js";
import { oneRegionScheduler } from "./fake-scheduler.js";

const regionWith = (storeIds: bigint[]): Region => ({
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: BigInt(storeIds.length), version: 1n },
  peers: storeIds.map((s) => ({ id: 10n + s, storeId: s })),
});

describe("replica read routing", () => {
  it("reloads a region cached with one peer once, then spreads reads over its followers", async () => {
    let current = regionWith([1n]);
    let lookups = 0;
    const scheduler = oneRegionScheduler(current, (id) => `store${id}`);
    scheduler.getRegion = async () => {
      lookups++;
      return { region: current, leader: current.peers[0] };
    };
    const cache = new RegionCache(scheduler, 1000, undefined, (addr) => ({ addr }) as KvConnection);
    const key = Buffer.from("k");
    expect((await cache.target(key)).peer.storeId, "the leader read").toBe(1n);
    current = regionWith([1n, 2n, 3n]); // the scheduler added two replicas
    const stores: bigint[] = [];
    for (let i = 0; i < 4; i++) stores.push((await cache.replicaTarget(key, { replicaRead: true })).peer.storeId);
    expect(stores).toEqual([2n, 3n, 2n, 3n]);
    expect(lookups, "one lookup for the first read, one reload").toBe(2);
  });

  it("asks only once for a region that really has one peer", async () => {
    const scheduler = oneRegionScheduler(regionWith([1n]), (id) => `store${id}`);
    let lookups = 0;
    const getRegion = scheduler.getRegion;
    scheduler.getRegion = (k) => {
      lookups++;
      return getRegion(k);
    };
    const cache = new RegionCache(scheduler, 1000, undefined, (addr) => ({ addr }) as KvConnection);
    for (let i = 0; i < 3; i++)
      expect((await cache.replicaTarget(Buffer.from("k"), { replicaRead: true })).peer.storeId).toBe(1n);
    expect(lookups).toBe(2);
  });
});
