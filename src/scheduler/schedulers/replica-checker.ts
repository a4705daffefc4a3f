import type { ClusterModel } from "../core/cluster.js";
import type { Decision, StoreScore } from "../schedule/decision.js";
import { isStoreUnhealthy, isTargetSuitable } from "../schedule/filters.js";
import { addPeerOperator, movePeerOperator, removePeerOperator } from "../schedule/op-builder.js";
import { OpInfluence } from "../schedule/op-influence.js";
import type { Operator } from "../schedule/operator.js";
import { OpKind } from "../schedule/operator.js";
import type { RegionInfo } from "../core/region-info.js";
import { isPending, leaderStoreId, storeIdsOf } from "../core/region-info.js";
import type { StoreInfo } from "../core/store-info.js";

/**
 * Keeps every region at max_replicas healthy peers: replaces peers on offline/removed/down stores,
 * adds a peer when there are too few, removes the worst one when there are too many.
 */
export class ReplicaChecker {
  readonly name = "replica-checker";

  /**
   * `infl` is what running operators will still change: targets are compared with it, so one patrol
   * that replaces many peers (a store drained) spreads them instead of sending all to one store.
   */
  check(
    cluster: ClusterModel,
    region: RegionInfo,
    allocPeerId: () => bigint,
    infl: OpInfluence = new OpInfluence(),
  ): Operator | undefined {
    if (!region.leader || leaderStoreId(region) === undefined) return undefined;
    const max = cluster.maxReplicas;
    const peers = region.meta.peers;
    const have = `${peers.length} peer${peers.length === 1 ? "" : "s"} for ${max} replicas`;
    const why = (text: string, source?: StoreInfo, target?: StoreInfo): Decision => ({
      scheduler: this.name,
      why: text,
      source: source && sizeScore(source, infl),
      target: target && sizeScore(target, infl),
      regionSize: region.approximateSize,
      limitsHit: [],
    });

    for (const p of peers) {
      if (!isStoreUnhealthy(cluster, p.storeId)) continue;
      const state = storeState(cluster, p.storeId);
      if (peers.length > max) {
        const op = removePeerOperator(
          cluster,
          `replica-checker: remove peer on unhealthy store ${p.storeId}`,
          region,
          p.storeId,
          OpKind.Replica,
        );
        if (op) return op.because(why(`${have} and store ${p.storeId} is ${state}`, cluster.getStore(p.storeId)));
        continue;
      }
      const target = this.bestTarget(cluster, region, infl);
      if (!target) continue;
      return movePeerOperator(
        cluster,
        `replica-checker: replace peer on unhealthy store ${p.storeId} with store ${target.id}`,
        region,
        p.storeId,
        target.id,
        allocPeerId(),
        OpKind.Replica,
      ).because(
        why(
          `store ${p.storeId} is ${state}; store ${target.id} is the healthy store with the least data`,
          cluster.getStore(p.storeId),
          target,
        ),
      );
    }

    if (peers.length < max) {
      const target = this.bestTarget(cluster, region, infl);
      if (!target) return undefined;
      return addPeerOperator(
        cluster,
        `replica-checker: add peer on store ${target.id}`,
        region,
        target.id,
        allocPeerId(),
        OpKind.Replica,
      ).because(why(`${have}; store ${target.id} is the healthy store with the least data`, undefined, target));
    }

    if (peers.length > max) {
      const worst = this.worstPeer(cluster, region);
      if (!worst) return undefined;
      const op = removePeerOperator(
        cluster,
        `replica-checker: remove extra peer on store ${worst.store.id}`,
        region,
        worst.store.id,
        OpKind.Replica,
      );
      return op?.because(why(`${have}; ${worst.reason}`, worst.store));
    }
    return undefined;
  }

  /** The healthy store without a peer of the region that holds (or will hold) the least data. */
  private bestTarget(cluster: ClusterModel, region: RegionInfo, infl: OpInfluence): StoreInfo | undefined {
    const holding = storeIdsOf(region);
    const size = (s: StoreInfo) => s.regionSize + infl.of(s.id).regionSize;
    const count = (s: StoreInfo) => s.regionCount + infl.of(s.id).regionCount;
    let best: StoreInfo | undefined;
    for (const s of cluster.getStores()) {
      if (holding.has(s.id) || !isTargetSuitable(cluster, s)) continue;
      if (!best || size(s) < size(best) || (size(s) === size(best) && count(s) < count(best))) best = s;
    }
    return best;
  }

  /**
   * The peer to drop from an over-replicated region: one still catching up (pending) first, as PD
   * does, so the region never loses an up-to-date copy while a lagging one stays; otherwise a
   * follower on the store with the most data, the leader only as a last resort.
   */
  private worstPeer(cluster: ClusterModel, region: RegionInfo): { store: StoreInfo; reason: string } | undefined {
    const leader = leaderStoreId(region);
    const candidates = region.meta.peers
      .map((p) => ({ store: cluster.getStore(p.storeId), pending: isPending(region, p.id) }))
      .filter((c): c is { store: StoreInfo; pending: boolean } => c.store !== undefined)
      .sort(
        (a, b) =>
          Number(b.pending) - Number(a.pending) ||
          Number(a.store.id === leader) - Number(b.store.id === leader) ||
          b.store.regionSize - a.store.regionSize,
      );
    const worst = candidates[0];
    if (!worst) return undefined;
    const reason = worst.pending
      ? `the peer on store ${worst.store.id} is pending (still catching up)`
      : `every peer is up to date and store ${worst.store.id} holds the most data among followers`;
    return { store: worst.store, reason };
  }
}

function sizeScore(s: StoreInfo, infl: OpInfluence): StoreScore {
  return { storeId: s.id, reported: s.regionSize, withInfluence: s.regionSize + infl.of(s.id).regionSize };
}

function storeState(cluster: ClusterModel, storeId: bigint): string {
  const s = cluster.getStore(storeId);
  if (!s) return "unknown";
  if (s.isTombstone()) return "tombstone";
  if (s.isOffline()) return "offline";
  return cluster.isStoreDown(s) ? "down" : "up";
}
