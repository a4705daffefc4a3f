import type { ClusterModel } from "../core/cluster.js";
import { isTargetSuitable } from "./filters.js";
import type { OpStep } from "./operator.js";
import { Operator, OpKind } from "./operator.js";
import type { RegionInfo } from "../core/region-info.js";
import { followers, isPending, leaderStoreId } from "../core/region-info.js";

/**
 * Picks the follower store (other than `exclude`) best able to take the leader: healthy, up to date
 * (a pending peer lacks the log, so a transfer to it stalls), fewest leaders.
 */
export function pickLeaderTarget(cluster: ClusterModel, region: RegionInfo, exclude: bigint): bigint | undefined {
  let best: { id: bigint; leaders: number } | undefined;
  for (const p of followers(region)) {
    if (p.storeId === exclude || isPending(region, p.id)) continue;
    const s = cluster.getStore(p.storeId);
    if (!s || !isTargetSuitable(cluster, s)) continue;
    if (!best || s.leaderCount < best.leaders) best = { id: s.id, leaders: s.leaderCount };
  }
  return best?.id;
}

/**
 * Steps that move the peer on `source` to `target`: add the new peer, hand the leadership over first
 * when `source` leads, then remove the old peer.
 */
export function movePeerOperator(
  cluster: ClusterModel,
  desc: string,
  region: RegionInfo,
  source: bigint,
  target: bigint,
  newPeerId: bigint,
  kind: number,
): Operator {
  const steps: OpStep[] = [{ type: "add_peer", toStore: target, peerId: newPeerId }];
  let k = kind | OpKind.Region;
  if (leaderStoreId(region) === source) {
    const to = pickLeaderTarget(cluster, region, source) ?? target;
    steps.push({ type: "transfer_leader", fromStore: source, toStore: to });
    k |= OpKind.Leader;
  }
  steps.push({ type: "remove_peer", fromStore: source });
  return Operator.forRegion(desc, region, k, steps, cluster.clock());
}

/** Removes the peer on `store`, handing leadership away first when it leads. Undefined if nobody can lead. */
export function removePeerOperator(
  cluster: ClusterModel,
  desc: string,
  region: RegionInfo,
  store: bigint,
  kind: number,
): Operator | undefined {
  const steps: OpStep[] = [];
  let k = kind | OpKind.Region;
  if (leaderStoreId(region) === store) {
    const to = pickLeaderTarget(cluster, region, store);
    if (to === undefined) return undefined;
    steps.push({ type: "transfer_leader", fromStore: store, toStore: to });
    k |= OpKind.Leader;
  }
  steps.push({ type: "remove_peer", fromStore: store });
  return Operator.forRegion(desc, region, k, steps, cluster.clock());
}

export function addPeerOperator(
  cluster: ClusterModel,
  desc: string,
  region: RegionInfo,
  target: bigint,
  newPeerId: bigint,
  kind: number,
): Operator {
  return Operator.forRegion(
    desc,
    region,
    kind | OpKind.Region,
    [{ type: "add_peer", toStore: target, peerId: newPeerId }],
    cluster.clock(),
  );
}

export function transferLeaderOperator(
  cluster: ClusterModel,
  desc: string,
  region: RegionInfo,
  from: bigint,
  to: bigint,
  kind: number,
): Operator {
  return Operator.forRegion(
    desc,
    region,
    kind | OpKind.Leader,
    [{ type: "transfer_leader", fromStore: from, toStore: to }],
    cluster.clock(),
  );
}
