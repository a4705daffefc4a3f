import { RegionTree } from "./region-tree.js";
import type { RegionInfo } from "./region-info.js";
import { leaderStoreId } from "./region-info.js";

/** Per-store view of the regions it holds, with running size sums. */
class StoreRegions {
  readonly leaders = new Map<bigint, RegionInfo>();
  readonly followers = new Map<bigint, RegionInfo>();
  readonly pending = new Map<bigint, RegionInfo>();
  leaderSize = 0;
  followerSize = 0;
}

export interface StoreRegionStats {
  leaderCount: number;
  regionCount: number;
  pendingPeerCount: number;
  leaderSize: number;
  regionSize: number;
}

export type Rng = () => number;

/**
 * All known regions: by id, in key order (the tree) and per store (leaders, followers, pending).
 * Putting a region replaces its previous version and evicts regions it overlaps.
 */
export class RegionIndex {
  private readonly byId = new Map<bigint, RegionInfo>();
  private readonly tree = new RegionTree();
  private readonly perStore = new Map<bigint, StoreRegions>();

  get size(): number {
    return this.byId.size;
  }

  get(id: bigint): RegionInfo | undefined {
    return this.byId.get(id);
  }

  /** Stores the region; returns the regions it displaced (other ids whose ranges it overlaps). */
  put(region: RegionInfo): RegionInfo[] {
    const origin = this.byId.get(region.meta.id);
    if (origin) this.removeOne(origin);
    const overlapped = this.tree.put(region);
    for (const o of overlapped) {
      if (o.meta.id !== region.meta.id) this.removeOne(o, true);
    }
    this.byId.set(region.meta.id, region);
    this.addToStores(region);
    return overlapped.filter((o) => o.meta.id !== region.meta.id);
  }

  remove(id: bigint): RegionInfo | undefined {
    const r = this.byId.get(id);
    if (r) this.removeOne(r);
    return r;
  }

  getByKey(key: Uint8Array): RegionInfo | undefined {
    return this.tree.search(key);
  }

  getPrev(key: Uint8Array): RegionInfo | undefined {
    return this.tree.searchPrev(key);
  }

  scan(start: Uint8Array, end: Uint8Array, limit: number): RegionInfo[] {
    return this.tree.scan(start, end, limit);
  }

  overlaps(start: Uint8Array, end: Uint8Array): RegionInfo[] {
    return this.tree.overlaps(start, end);
  }

  all(): RegionInfo[] {
    return this.tree.all();
  }

  statsOf(storeId: bigint): StoreRegionStats {
    const s = this.perStore.get(storeId);
    if (!s) return { leaderCount: 0, regionCount: 0, pendingPeerCount: 0, leaderSize: 0, regionSize: 0 };
    return {
      leaderCount: s.leaders.size,
      regionCount: s.leaders.size + s.followers.size,
      pendingPeerCount: s.pending.size,
      leaderSize: s.leaderSize,
      regionSize: s.leaderSize + s.followerSize,
    };
  }

  leaderRegions(storeId: bigint): RegionInfo[] {
    return [...(this.perStore.get(storeId)?.leaders.values() ?? [])];
  }

  followerRegions(storeId: bigint): RegionInfo[] {
    return [...(this.perStore.get(storeId)?.followers.values() ?? [])];
  }

  pendingRegions(storeId: bigint): RegionInfo[] {
    return [...(this.perStore.get(storeId)?.pending.values() ?? [])];
  }

  randLeaderRegion(storeId: bigint, rng: Rng): RegionInfo | undefined {
    return pick(this.perStore.get(storeId)?.leaders, rng);
  }

  randFollowerRegion(storeId: bigint, rng: Rng): RegionInfo | undefined {
    return pick(this.perStore.get(storeId)?.followers, rng);
  }

  randPendingRegion(storeId: bigint, rng: Rng): RegionInfo | undefined {
    return pick(this.perStore.get(storeId)?.pending, rng);
  }

  private removeOne(r: RegionInfo, alreadyOutOfTree = false): void {
    if (!alreadyOutOfTree) this.tree.remove(r);
    this.byId.delete(r.meta.id);
    this.removeFromStores(r);
  }

  private store(storeId: bigint): StoreRegions {
    let s = this.perStore.get(storeId);
    if (!s) {
      s = new StoreRegions();
      this.perStore.set(storeId, s);
    }
    return s;
  }

  private addToStores(r: RegionInfo): void {
    const id = r.meta.id;
    const leaderStore = leaderStoreId(r);
    for (const p of r.meta.peers) {
      const s = this.store(p.storeId);
      if (p.storeId === leaderStore) {
        s.leaders.set(id, r);
        s.leaderSize += r.approximateSize;
      } else {
        s.followers.set(id, r);
        s.followerSize += r.approximateSize;
      }
    }
    for (const p of r.pendingPeers) this.store(p.storeId).pending.set(id, r);
  }

  private removeFromStores(r: RegionInfo): void {
    const id = r.meta.id;
    for (const p of r.meta.peers) {
      const s = this.perStore.get(p.storeId);
      if (!s) continue;
      if (s.leaders.get(id) === r) {
        s.leaders.delete(id);
        s.leaderSize -= r.approximateSize;
      }
      if (s.followers.get(id) === r) {
        s.followers.delete(id);
        s.followerSize -= r.approximateSize;
      }
    }
    for (const p of r.pendingPeers) {
      const s = this.perStore.get(p.storeId);
      if (s?.pending.get(id) === r) s.pending.delete(id);
    }
  }
}

function pick<T>(m: Map<bigint, T> | undefined, rng: Rng): T | undefined {
  if (!m || m.size === 0) return undefined;
  const idx = Math.floor(rng() * m.size) % m.size;
  let i = 0;
  for (const v of m.values()) if (i++ === idx) return v;
  return undefined;
}
