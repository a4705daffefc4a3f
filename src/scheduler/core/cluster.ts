import type { StoreState } from "../../proto/metapb.js";
import { Store } from "../../proto/metapb.js";
import { realRuntime } from "../../util/runtime.js";
import type { StoreStats } from "../../proto/schedulerpb.js";
import { StaleRegionError } from "../errors.js";
import type { RegionInfo } from "./region-info.js";
import { epochOf, isEpochStale, sameRegionInfo } from "./region-info.js";
import type { Rng } from "./regions.js";
import { RegionIndex } from "./regions.js";
import { StoreInfo } from "./store-info.js";

export type Clock = () => number;

/** A store without a heartbeat for this long is disconnected (TinyKV storeDisconnectDuration). */
export const STORE_DISCONNECTED_MS = 20_000;

export interface ClusterOptions {
  /** Wall clock in ms; injected so tests control store down time. */
  clock?: Clock;
  rng?: Rng;
  /** A store silent for longer than this is down (TinyKV max-store-down-time, 30 min). */
  maxStoreDownTimeMs?: number;
  maxReplicas?: number;
}

export interface HeartbeatResult {
  /** False when the heartbeat carried nothing new (state unchanged). */
  changed: boolean;
  /** Regions removed because the new range overlaps them. */
  overlapped: RegionInfo[];
}

/**
 * The cluster model: stores and regions, the heartbeat staleness rules, and store statistics.
 * Pure and synchronous: no I/O and no timers, so tests drive it directly.
 */
export class ClusterModel {
  readonly clock: Clock;
  readonly rng: Rng;
  maxStoreDownTimeMs: number;
  maxReplicas: number;
  readonly regions = new RegionIndex();
  private readonly stores = new Map<bigint, StoreInfo>();

  constructor(opts: ClusterOptions = {}) {
    this.clock = opts.clock ?? realRuntime.now;
    this.rng = opts.rng ?? realRuntime.random;
    this.maxStoreDownTimeMs = opts.maxStoreDownTimeMs ?? 30 * 60_000;
    this.maxReplicas = opts.maxReplicas ?? 3;
  }

  // ---- stores ----

  getStore(id: bigint): StoreInfo | undefined {
    return this.stores.get(id);
  }

  getStores(): StoreInfo[] {
    return [...this.stores.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Adds or replaces a store's meta, keeping its stats. */
  putStore(meta: Store): StoreInfo {
    const existing = this.stores.get(meta.id);
    if (existing) {
      existing.meta = Store.create(meta);
      return existing;
    }
    const info = new StoreInfo(Store.create(meta), this.clock());
    Object.assign(info, this.regions.statsOf(meta.id));
    this.stores.set(meta.id, info);
    return info;
  }

  setStoreState(id: bigint, state: StoreState): void {
    const s = this.stores.get(id);
    if (s) s.meta = Store.create({ ...s.meta, state });
  }

  storeHeartbeat(stats: StoreStats): StoreInfo | undefined {
    const s = this.stores.get(stats.storeId);
    if (!s) return undefined;
    s.stats = stats;
    s.lastHeartbeatMs = this.clock();
    return s;
  }

  isStoreDown(s: StoreInfo): boolean {
    return s.downTimeMs(this.clock()) > this.maxStoreDownTimeMs;
  }

  /** Silent for longer than TinyKV/PD's 20 s: not down yet, but no place to send a leader or a peer. */
  isStoreDisconnected(s: StoreInfo): boolean {
    return s.downTimeMs(this.clock()) > STORE_DISCONNECTED_MS;
  }

  /** Recomputes a store's leader/region/pending counts and sizes from the region index. */
  updateStoreStatus(storeId: bigint): void {
    const s = this.stores.get(storeId);
    if (s) Object.assign(s, this.regions.statsOf(storeId));
  }

  // ---- regions ----

  getRegion(id: bigint): RegionInfo | undefined {
    return this.regions.get(id);
  }

  getRegionByKey(key: Uint8Array): RegionInfo | undefined {
    return this.regions.getByKey(key);
  }

  getPrevRegion(key: Uint8Array): RegionInfo | undefined {
    return this.regions.getPrev(key);
  }

  scanRegions(start: Uint8Array, end: Uint8Array, limit: number): RegionInfo[] {
    return this.regions.scan(start, end, limit);
  }

  /** Throws StaleRegionError when the heartbeat's epoch is older than the same region or any overlapped one. */
  checkStale(region: RegionInfo): void {
    const epoch = epochOf(region);
    const stale = (known: RegionInfo) => {
      const k = epochOf(known);
      return new StaleRegionError(region.meta.id, epoch, { id: known.meta.id, version: k.version, confVer: k.confVer });
    };
    const origin = this.regions.get(region.meta.id);
    const overlaps = this.regions
      .overlaps(region.meta.startKey, region.meta.endKey)
      .filter((o) => o.meta.id !== region.meta.id);
    if (origin) {
      if (isEpochStale(epoch, epochOf(origin))) throw stale(origin);
      // A known region whose range grew (merge) must not evict a region that split or merged later.
      for (const o of overlaps) if (epoch.version < epochOf(o).version) throw stale(o);
      return;
    }
    for (const o of overlaps) if (isEpochStale(epoch, epochOf(o))) throw stale(o);
  }

  /**
   * TinyKV's processRegionHeartbeat: reject stale epochs, else store the region (evicting overlapped
   * ones) and recompute the statistics of every store it, its previous version or the evicted touch.
   */
  processRegionHeartbeat(region: RegionInfo): HeartbeatResult {
    this.checkStale(region);
    const origin = this.regions.get(region.meta.id);
    if (origin && sameRegionInfo(origin, region)) return { changed: false, overlapped: [] };
    const overlapped = this.regions.put(region);
    const touched = new Set<bigint>();
    for (const r of [region, ...(origin ? [origin] : []), ...overlapped]) {
      for (const p of r.meta.peers) touched.add(p.storeId);
    }
    for (const id of touched) this.updateStoreStatus(id);
    return { changed: true, overlapped };
  }

  /** Puts a region without recomputing store statistics (for loading from disk and mock clusters). */
  putRegionRaw(region: RegionInfo): RegionInfo[] {
    return this.regions.put(region);
  }
}
