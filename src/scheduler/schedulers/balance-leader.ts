import type { ClusterModel } from "../core/cluster.js";
import { byId, isSourceSuitable, isTargetSuitable } from "../schedule/filters.js";
import { transferLeaderOperator } from "../schedule/op-builder.js";
import type { Operator } from "../schedule/operator.js";
import { OpKind } from "../schedule/operator.js";
import type { OperatorController } from "../schedule/operator-controller.js";
import type { RegionInfo } from "../core/region-info.js";
import { followers, leaderStoreId } from "../core/region-info.js";
import type { StoreInfo } from "../core/store-info.js";

export interface BalanceLeaderOptions {
  /** Max running leader operators (TinyKV leader-schedule-limit, 4). */
  leaderScheduleLimit?: number;
  /** Leader-count tolerance on each side (TinyKV leaderTolerantSizeRatio, 5). */
  tolerance?: number;
  retryLimit?: number;
}

/**
 * TinyKV's balance-leader: alternately move a leader out of the store with the most leaders and into
 * the store with the fewest, only when source - tolerance > target + tolerance.
 */
export class BalanceLeaderScheduler {
  readonly name = "balance-leader";
  private readonly limit: number;
  readonly tolerance: number;
  private readonly retryLimit: number;

  constructor(opts: BalanceLeaderOptions = {}) {
    this.limit = opts.leaderScheduleLimit ?? 4;
    this.tolerance = opts.tolerance ?? 5;
    this.retryLimit = opts.retryLimit ?? 10;
  }

  schedule(cluster: ClusterModel, oc: OperatorController): Operator | undefined {
    if (oc.leaderOps() >= this.limit) return undefined;
    const stores = cluster.getStores();
    const sources = stores
      .filter((s) => isSourceSuitable(cluster, s))
      .sort((a, b) => b.leaderCount - a.leaderCount || byId(a, b));
    const targets = stores
      .filter((s) => isTargetSuitable(cluster, s))
      .sort((a, b) => a.leaderCount - b.leaderCount || byId(a, b));
    for (let i = 0; i < Math.max(sources.length, targets.length); i++) {
      const out = i < sources.length ? this.transferOut(cluster, oc, sources[i]!) : undefined;
      if (out) return out;
      const into = i < targets.length ? this.transferIn(cluster, oc, targets[i]!) : undefined;
      if (into) return into;
    }
    return undefined;
  }

  shouldBalance(source: StoreInfo, target: StoreInfo): boolean {
    return source.leaderCount - this.tolerance > target.leaderCount + this.tolerance;
  }

  private transferOut(cluster: ClusterModel, oc: OperatorController, source: StoreInfo): Operator | undefined {
    for (let i = 0; i < this.retryLimit; i++) {
      const region = cluster.regions.randLeaderRegion(source.id, cluster.rng);
      if (!region) return undefined;
      if (oc.get(region.meta.id)) continue;
      let target: StoreInfo | undefined;
      for (const p of followers(region)) {
        const s = cluster.getStore(p.storeId);
        if (s && isTargetSuitable(cluster, s) && (!target || s.leaderCount < target.leaderCount)) target = s;
      }
      if (!target || !this.shouldBalance(source, target)) continue;
      return this.balanceOperator(
        cluster,
        region,
        source,
        target,
        `store ${source.id} leads more regions than store ${target.id}, beyond the tolerance on each side`,
      );
    }
    return undefined;
  }

  private transferIn(cluster: ClusterModel, oc: OperatorController, target: StoreInfo): Operator | undefined {
    for (let i = 0; i < this.retryLimit; i++) {
      const region = cluster.regions.randFollowerRegion(target.id, cluster.rng);
      if (!region) return undefined;
      if (oc.get(region.meta.id)) continue;
      const sourceId = leaderStoreId(region);
      const source = sourceId === undefined ? undefined : cluster.getStore(sourceId);
      if (!source || !isSourceSuitable(cluster, source) || !this.shouldBalance(source, target)) continue;
      return this.balanceOperator(
        cluster,
        region,
        source,
        target,
        `store ${target.id} leads fewer regions than store ${source.id}, beyond the tolerance on each side`,
      );
    }
    return undefined;
  }

  private balanceOperator(
    cluster: ClusterModel,
    region: RegionInfo,
    source: StoreInfo,
    target: StoreInfo,
    why: string,
  ): Operator {
    const desc = `balance-leader: region ${region.meta.id} leader from store ${source.id} to store ${target.id}`;
    const score = (s: StoreInfo) => ({ storeId: s.id, reported: s.leaderCount, withInfluence: s.leaderCount });
    return transferLeaderOperator(cluster, desc, region, source.id, target.id, OpKind.Balance).because({
      scheduler: this.name,
      why: `${why} (leader counts, tolerance ${this.tolerance})`,
      source: score(source),
      target: score(target),
      regionSize: region.approximateSize,
      limitsHit: [],
    });
  }
}
