import type { Store } from "../../proto/metapb.js";
import { StoreState } from "../../proto/metapb.js";
import { StoreStats } from "../../proto/schedulerpb.js";

/** What the scheduler knows about one store: meta, last reported stats, and region statistics. */
export class StoreInfo {
  stats: StoreStats;
  /** Wall ms of the last store heartbeat (or of when the scheduler learned about the store). */
  lastHeartbeatMs: number;
  leaderCount = 0;
  regionCount = 0;
  pendingPeerCount = 0;
  /** Sums of approximate region sizes, MiB. */
  leaderSize = 0;
  regionSize = 0;

  constructor(
    public meta: Store,
    nowMs: number,
  ) {
    this.stats = StoreStats.create({ storeId: meta.id });
    this.lastHeartbeatMs = nowMs;
  }

  get id(): bigint {
    return this.meta.id;
  }

  isUp(): boolean {
    return this.meta.state === StoreState.Up;
  }

  isOffline(): boolean {
    return this.meta.state === StoreState.Offline;
  }

  isTombstone(): boolean {
    return this.meta.state === StoreState.Tombstone;
  }

  downTimeMs(nowMs: number): number {
    return Math.max(0, nowMs - this.lastHeartbeatMs);
  }

  isBusy(): boolean {
    return this.stats.isBusy;
  }

  toJSON(nowMs: number): Record<string, unknown> {
    return {
      id: this.meta.id.toString(),
      address: this.meta.address,
      state: StoreState[this.meta.state] ?? String(this.meta.state),
      last_heartbeat_ms_ago: this.downTimeMs(nowMs),
      capacity: this.stats.capacity.toString(),
      available: this.stats.available.toString(),
      used_size: this.stats.usedSize.toString(),
      leader_count: this.leaderCount,
      region_count: this.regionCount,
      pending_peer_count: this.pendingPeerCount,
      leader_size_mib: this.leaderSize,
      region_size_mib: this.regionSize,
    };
  }
}
