import type { ClusterModel } from "./cluster.js";
import { byId, isSourceSuitable, isTargetSuitable } from "./filters.js";
import { movePeerOperator } from "./op-builder.js";
import { OpKind, type Operator } from "./operator.js";
import type { OperatorController } from "./operator-controller.js";
import { storeIdsOf, type RegionInfo } from "./region-info.js";
import type { StoreInfo } from "./store-info.js";

export interface BalanceRegionOptions {
  /** Max running region operators (TinyKV region-schedule-limit, 2048). */
  regionScheduleLimit?: number;
  /** Attempts to find a movable region on one source store. */
  retryLimit?: number;
}

/**
 * TinyKV's balance-region (lab 3C): move one peer from the store with the most region size to the
 * suitable store with the least, when the gap is worth more than twice the region's size.
 */
export class BalanceRegionScheduler {
  readonly name = "balance-region";
  private readonly limit: number;
  private readonly retryLimit: number;

  constructor(opts: BalanceRegionOptions = {}) {
    this.limit = opts.regionScheduleLimit ?? 2048;
    this.retryLimit = opts.retryLimit ?? 10;
  }

  schedule(cluster: ClusterModel, oc: OperatorController, allocPeerId: () => bigint): Operator | undefined {
    if (oc.regionOps() >= this.limit) return undefined;
    const stores = cluster.getStores();
    const sources = stores
      .filter((s) => isSourceSuitable(cluster, s))
      .sort((a, b) => b.regionSize - a.regionSize || byId(a, b));
    for (const source of sources) {
      for (let i = 0; i < this.retryLimit; i++) {
        const region = this.pickRegion(cluster, source);
        if (!region) break;
        if (region.meta.peers.length !== cluster.maxReplicas || oc.get(region.meta.id) || !region.leader) continue;
        const target = this.pickTarget(cluster, stores, region);
        if (!target) break;
        if (source.regionSize - target.regionSize <= 2 * region.approximateSize) break;
        return movePeerOperator(
          cluster,
          `balance-region: move region ${region.meta.id} from store ${source.id} to store ${target.id}`,
          region,
          source.id,
          target.id,
          allocPeerId(),
          OpKind.Balance,
        );
      }
    }
    return undefined;
  }

  /** A region with a pending peer on the store first, then a follower region, then a leader region. */
  private pickRegion(cluster: ClusterModel, source: StoreInfo): RegionInfo | undefined {
    const r = cluster.regions;
    return (
      r.randPendingRegion(source.id, cluster.rng) ??
      r.randFollowerRegion(source.id, cluster.rng) ??
      r.randLeaderRegion(source.id, cluster.rng)
    );
  }

  private pickTarget(cluster: ClusterModel, stores: StoreInfo[], region: RegionInfo): StoreInfo | undefined {
    const holding = storeIdsOf(region);
    let best: StoreInfo | undefined;
    for (const s of stores) {
      if (holding.has(s.id) || !isTargetSuitable(cluster, s)) continue;
      if (!best || s.regionSize < best.regionSize) best = s;
    }
    return best;
  }
}
