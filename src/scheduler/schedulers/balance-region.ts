import type { ClusterModel } from "../core/cluster.js";
import type { Decision, StoreScore } from "../schedule/decision.js";
import { noteLimit } from "../schedule/decision.js";
import { byId, isSourceSuitable, isTargetSuitable } from "../schedule/filters.js";
import { movePeerOperator } from "../schedule/op-builder.js";
import type { OpInfluence } from "../schedule/op-influence.js";
import { scoreSize } from "../schedule/op-influence.js";
import type { Operator } from "../schedule/operator.js";
import { OpKind } from "../schedule/operator.js";
import type { OperatorController } from "../schedule/operator-controller.js";
import type { RegionInfo } from "../core/region-info.js";
import { leaderStoreId, storeIdsOf } from "../core/region-info.js";
import type { StoreInfo } from "../core/store-info.js";

export interface BalanceRegionOptions {
  /** Max running region operators (TinyKV region-schedule-limit, 2048). */
  regionScheduleLimit?: number;
  /** Attempts to find a movable region on one source store. */
  retryLimit?: number;
  /** A target with this many pending (catching-up) peers gets no more (PD max-pending-peer-count). */
  maxPendingPeers?: number;
  /** A store receiving, or a leader sending, this many snapshots gets no more (PD max-snapshot-count). */
  maxSnapshots?: number;
  /**
   * The gap between source and target a move needs is at least twice this fraction of the average
   * region size (PD tolerant-size-ratio, 1 at the least), and never less than twice the region's size.
   */
  toleranceRatio?: number;
}

interface Scored {
  store: StoreInfo;
  score: StoreScore;
}

/**
 * Balance-region: move one peer from the store with the largest region size to the suitable store
 * with the smallest, as TinyKV lab 3C does, plus what PD adds so that it converges instead of
 * thrashing: scores count the running operators (a move already under way is not planned again),
 * targets with too many pending peers or snapshots in flight are skipped, every store has a rate
 * limit on peers gained and lost, and the gap must be at least twice the larger of the region
 * size and a tolerance, so a move never makes the target larger than the source and small regions
 * are not shuffled for small gains.
 */
export class BalanceRegionScheduler {
  readonly name = "balance-region";
  private readonly limit: number;
  private readonly retryLimit: number;
  readonly maxPendingPeers: number;
  readonly maxSnapshots: number;
  readonly toleranceRatio: number;

  constructor(opts: BalanceRegionOptions = {}) {
    this.limit = opts.regionScheduleLimit ?? 2048;
    this.retryLimit = opts.retryLimit ?? 10;
    this.maxPendingPeers = opts.maxPendingPeers ?? 16;
    this.maxSnapshots = opts.maxSnapshots ?? 3;
    this.toleranceRatio = opts.toleranceRatio ?? 1;
  }

  schedule(cluster: ClusterModel, oc: OperatorController, allocPeerId: () => bigint): Operator | undefined {
    if (oc.regionOps() >= this.limit) return undefined;
    const infl = oc.influence(cluster);
    const limits: string[] = [];
    const scored = cluster.getStores().map((store) => scoreOf(store, infl));
    const tolerance = this.toleranceRatio * averageRegionSize(scored);
    const sources = scored
      .filter((s) => isSourceSuitable(cluster, s.store))
      .sort((a, b) => b.score.withInfluence - a.score.withInfluence || byId(a.store, b.store));
    for (const source of sources) {
      if (oc.storeLimit.available(source.store.id, "remove-peer") < 1) {
        noteLimit(limits, `store ${source.store.id}: remove-peer rate limit (${oc.storeLimit.perMinute}/min)`);
        continue;
      }
      for (let i = 0; i < this.retryLimit; i++) {
        const region = this.pickRegion(cluster, source.store);
        if (!region) break;
        if (!this.isMovable(cluster, oc, region, source.store.id, infl, limits)) continue;
        const target = this.pickTarget(cluster, oc, scored, region, infl, limits);
        if (!target) break;
        const size = scoreSize(region);
        // After the move the source still holds at least as much as the target: no move undoes another.
        if (source.score.withInfluence - target.score.withInfluence < 2 * Math.max(size, tolerance)) continue;
        const decision: Decision = {
          scheduler: this.name,
          why: `store ${source.store.id} leads store ${target.store.id} by at least twice the larger of the region size and the tolerance`,
          source: source.score,
          target: target.score,
          regionSize: size,
          tolerance,
          limitsHit: limits,
        };
        return movePeerOperator(
          cluster,
          `balance-region: move region ${region.meta.id} from store ${source.store.id} to store ${target.store.id}`,
          region,
          source.store.id,
          target.store.id,
          allocPeerId(),
          OpKind.Balance,
        ).because(decision);
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

  /** Fully replicated, led, not being changed, not catching up elsewhere, and its leader may send a snapshot. */
  private isMovable(
    cluster: ClusterModel,
    oc: OperatorController,
    region: RegionInfo,
    source: bigint,
    infl: OpInfluence,
    limits: string[],
  ): boolean {
    if (region.meta.peers.length !== cluster.maxReplicas || oc.get(region.meta.id) || !region.leader) return false;
    // A peer still catching up on another store: moving now would leave the region two replicas short.
    if (region.pendingPeers.some((p) => p.storeId !== source)) return false;
    const leader = leaderStoreId(region)!;
    const sending = Math.max(infl.of(leader).sendingSnapshots, cluster.getStore(leader)?.stats.sendingSnapCount ?? 0);
    if (sending >= this.maxSnapshots) {
      noteLimit(limits, `store ${leader}: sending ${sending} snapshots (limit ${this.maxSnapshots})`);
      return false;
    }
    return true;
  }

  /** The suitable store without a peer of the region that has the lowest score and room under every limit. */
  private pickTarget(
    cluster: ClusterModel,
    oc: OperatorController,
    scored: Scored[],
    region: RegionInfo,
    infl: OpInfluence,
    limits: string[],
  ): Scored | undefined {
    const holding = storeIdsOf(region);
    let best: Scored | undefined;
    for (const s of scored) {
      const store = s.store;
      if (holding.has(store.id) || !isTargetSuitable(cluster, store)) continue;
      if (best && s.score.withInfluence >= best.score.withInfluence) continue;
      if (store.pendingPeerCount >= this.maxPendingPeers) {
        noteLimit(limits, `store ${store.id}: ${store.pendingPeerCount} pending peers (limit ${this.maxPendingPeers})`);
        continue;
      }
      const receiving = Math.max(
        infl.of(store.id).receivingSnapshots,
        store.stats.receivingSnapCount + store.stats.applyingSnapCount,
      );
      if (receiving >= this.maxSnapshots) {
        noteLimit(limits, `store ${store.id}: receiving ${receiving} snapshots (limit ${this.maxSnapshots})`);
        continue;
      }
      if (oc.storeLimit.available(store.id, "add-peer") < 1) {
        noteLimit(limits, `store ${store.id}: add-peer rate limit (${oc.storeLimit.perMinute}/min)`);
        continue;
      }
      best = s;
    }
    return best;
  }
}

function scoreOf(store: StoreInfo, infl: OpInfluence): Scored {
  return {
    store,
    score: {
      storeId: store.id,
      reported: store.regionSize,
      withInfluence: store.regionSize + infl.of(store.id).regionSize,
    },
  };
}

/** Average region size over every replica the stores report, MiB (1 when nothing is known). */
function averageRegionSize(scored: Scored[]): number {
  let size = 0;
  let count = 0;
  for (const s of scored) {
    size += s.store.regionSize;
    count += s.store.regionCount;
  }
  return count > 0 && size > 0 ? size / count : 1;
}
