import type { ClusterModel } from "../core/cluster.js";
import { byId, isSourceSuitable, isTargetSuitable } from "../schedule/filters.js";
import { transferLeaderOperator } from "../schedule/op-builder.js";
import type { OpInfluence } from "../schedule/op-influence.js";
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
 * the store with the fewest, only when source - tolerance > target + tolerance. Counts include what
 * running operators will still move (PD's operator influence), so concurrent transfers do not
 * overshoot, and a move must shrink the gap: moving one leader across a gap of 1 only flips it,
 * and the next round would move it back (a ping-pong that keeps the region transferring).
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
    const leaders = leaderCounts(oc.influence(cluster));
    const stores = cluster.getStores();
    const sources = stores
      .filter((s) => isSourceSuitable(cluster, s))
      .sort((a, b) => leaders(b) - leaders(a) || byId(a, b));
    const targets = stores
      .filter((s) => isTargetSuitable(cluster, s))
      .sort((a, b) => leaders(a) - leaders(b) || byId(a, b));
    for (let i = 0; i < Math.max(sources.length, targets.length); i++) {
      const out = i < sources.length ? this.transferOut(cluster, oc, leaders, sources[i]!) : undefined;
      if (out) return out;
      const into = i < targets.length ? this.transferIn(cluster, oc, leaders, targets[i]!) : undefined;
      if (into) return into;
    }
    return undefined;
  }

  /** Worth moving one leader from a store leading `source` regions to one leading `target`. */
  shouldBalance(source: number, target: number): boolean {
    const gap = source - target;
    return gap > 2 * this.tolerance && gap >= 2;
  }

  private transferOut(
    cluster: ClusterModel,
    oc: OperatorController,
    leaders: LeaderCount,
    source: StoreInfo,
  ): Operator | undefined {
    for (let i = 0; i < this.retryLimit; i++) {
      const region = cluster.regions.randLeaderRegion(source.id, cluster.rng);
      if (!region) return undefined;
      if (!isHealthy(oc, region)) continue;
      let target: StoreInfo | undefined;
      for (const p of followers(region)) {
        const s = cluster.getStore(p.storeId);
        if (s && isTargetSuitable(cluster, s) && (!target || leaders(s) < leaders(target))) target = s;
      }
      if (!target || !this.shouldBalance(leaders(source), leaders(target))) continue;
      return this.balanceOperator(
        cluster,
        region,
        leaders,
        source,
        target,
        `store ${source.id} leads more regions than store ${target.id}, beyond the tolerance on each side`,
      );
    }
    return undefined;
  }

  private transferIn(
    cluster: ClusterModel,
    oc: OperatorController,
    leaders: LeaderCount,
    target: StoreInfo,
  ): Operator | undefined {
    for (let i = 0; i < this.retryLimit; i++) {
      const region = cluster.regions.randFollowerRegion(target.id, cluster.rng);
      if (!region) return undefined;
      if (!isHealthy(oc, region)) continue;
      const sourceId = leaderStoreId(region);
      const source = sourceId === undefined ? undefined : cluster.getStore(sourceId);
      if (!source || !isSourceSuitable(cluster, source) || !this.shouldBalance(leaders(source), leaders(target)))
        continue;
      return this.balanceOperator(
        cluster,
        region,
        leaders,
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
    leaders: LeaderCount,
    source: StoreInfo,
    target: StoreInfo,
    why: string,
  ): Operator {
    const desc = `balance-leader: region ${region.meta.id} leader from store ${source.id} to store ${target.id}`;
    const score = (s: StoreInfo) => ({ storeId: s.id, reported: s.leaderCount, withInfluence: leaders(s) });
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

/**
 * A region balance-leader may touch: no operator running and no peer catching up (TinyKV's
 * HealthRegion). A pending peer lacks the log, so handing it the leadership stalls the region.
 */
function isHealthy(oc: OperatorController, region: RegionInfo): boolean {
  return !oc.get(region.meta.id) && region.pendingPeers.length === 0;
}

/** A store's leader count once the running operators finish. */
type LeaderCount = (store: StoreInfo) => number;

function leaderCounts(infl: OpInfluence): LeaderCount {
  return (store) => store.leaderCount + infl.of(store.id).leaderCount;
}
