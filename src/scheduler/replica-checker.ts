import type { ClusterModel } from "./cluster.js";
import { isStoreUnhealthy, isTargetSuitable } from "./filters.js";
import { addPeerOperator, movePeerOperator, removePeerOperator } from "./op-builder.js";
import { OpKind, type Operator } from "./operator.js";
import { leaderStoreId, storeIdsOf, type RegionInfo } from "./region-info.js";
import type { StoreInfo } from "./store-info.js";

/**
 * Keeps every region at max_replicas healthy peers: replaces peers on offline/removed/down stores,
 * adds a peer when there are too few, removes the worst one when there are too many.
 */
export class ReplicaChecker {
  readonly name = "replica-checker";

  check(cluster: ClusterModel, region: RegionInfo, allocPeerId: () => bigint): Operator | undefined {
    if (!region.leader || leaderStoreId(region) === undefined) return undefined;
    const max = cluster.maxReplicas;
    const peers = region.meta.peers;

    for (const p of peers) {
      if (!isStoreUnhealthy(cluster, p.storeId)) continue;
      if (peers.length > max) {
        const op = removePeerOperator(cluster, `replica-checker: remove peer on unhealthy store ${p.storeId}`, region, p.storeId, OpKind.Replica);
        if (op) return op;
        continue;
      }
      const target = this.bestTarget(cluster, region);
      if (!target) continue;
      return movePeerOperator(
        cluster,
        `replica-checker: replace peer on unhealthy store ${p.storeId} with store ${target.id}`,
        region,
        p.storeId,
        target.id,
        allocPeerId(),
        OpKind.Replica,
      );
    }

    if (peers.length < max) {
      const target = this.bestTarget(cluster, region);
      if (!target) return undefined;
      return addPeerOperator(cluster, `replica-checker: add peer on store ${target.id}`, region, target.id, allocPeerId(), OpKind.Replica);
    }

    if (peers.length > max) {
      const worst = this.worstPeerStore(cluster, region);
      if (worst === undefined) return undefined;
      return removePeerOperator(cluster, `replica-checker: remove extra peer on store ${worst}`, region, worst, OpKind.Replica);
    }
    return undefined;
  }

  /** The healthy store without a peer of the region that holds the least data. */
  private bestTarget(cluster: ClusterModel, region: RegionInfo): StoreInfo | undefined {
    const holding = storeIdsOf(region);
    let best: StoreInfo | undefined;
    for (const s of cluster.getStores()) {
      if (holding.has(s.id) || !isTargetSuitable(cluster, s)) continue;
      if (!best || s.regionSize < best.regionSize || (s.regionSize === best.regionSize && s.regionCount < best.regionCount)) best = s;
    }
    return best;
  }

  /** The store whose peer to drop: a follower on the store with the most data (the leader only as last resort). */
  private worstPeerStore(cluster: ClusterModel, region: RegionInfo): bigint | undefined {
    const leader = leaderStoreId(region);
    const candidates = region.meta.peers
      .map((p) => cluster.getStore(p.storeId))
      .filter((s): s is StoreInfo => s !== undefined)
      .sort((a, b) => Number(a.id === leader) - Number(b.id === leader) || b.regionSize - a.regionSize);
    return candidates[0]?.id;
  }
}
