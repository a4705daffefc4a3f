import type { ClusterModel } from "../core/cluster.js";
import type { Operator } from "./operator.js";
import type { RegionInfo } from "../core/region-info.js";
import { isPending, leaderStoreId, storePeer } from "../core/region-info.js";

/** What running operators will still change on one store once they finish (PD's operator influence). */
export class StoreInfluence {
  regionSize = 0;
  regionCount = 0;
  leaderSize = 0;
  leaderCount = 0;
  /** New peers on this store that have not caught up yet: snapshots it is receiving. */
  receivingSnapshots = 0;
  /** New peers elsewhere whose region this store leads: snapshots it is sending. */
  sendingSnapshots = 0;
}

const NONE = new StoreInfluence();

export class OpInfluence {
  private readonly stores = new Map<bigint, StoreInfluence>();

  of(storeId: bigint): StoreInfluence {
    return this.stores.get(storeId) ?? NONE;
  }

  at(storeId: bigint): StoreInfluence {
    let s = this.stores.get(storeId);
    if (!s) {
      s = new StoreInfluence();
      this.stores.set(storeId, s);
    }
    return s;
  }
}

/** Size a region counts for in scores: an empty region still costs a peer (PD counts it as 1 MiB). */
export function scoreSize(region: RegionInfo): number {
  return Math.max(1, region.approximateSize);
}

/**
 * Adds what `op`'s unfinished steps will still do, judged against the region as last reported:
 * a step whose effect the heartbeat already shows is in the store statistics and is not counted again.
 */
export function addOperatorInfluence(infl: OpInfluence, op: Operator, region: RegionInfo): void {
  const size = scoreSize(region);
  const leader = leaderStoreId(region);
  for (let i = op.currentStepIndex; i < op.length; i++) {
    const step = op.step(i)!;
    switch (step.type) {
      case "add_peer": {
        const peer = storePeer(region, step.toStore);
        const to = infl.at(step.toStore);
        if (!peer) {
          to.regionSize += size;
          to.regionCount += 1;
        }
        if (!peer || isPending(region, peer.id)) {
          to.receivingSnapshots += 1;
          if (leader !== undefined) infl.at(leader).sendingSnapshots += 1;
        }
        break;
      }
      case "remove_peer":
        if (storePeer(region, step.fromStore)) {
          const from = infl.at(step.fromStore);
          from.regionSize -= size;
          from.regionCount -= 1;
        }
        break;
      case "transfer_leader":
        if (leader !== step.toStore) {
          const from = infl.at(step.fromStore);
          const to = infl.at(step.toStore);
          from.leaderSize -= size;
          from.leaderCount -= 1;
          to.leaderSize += size;
          to.leaderCount += 1;
        }
        break;
    }
  }
}

/** The influence of every running operator whose region the cluster knows. */
export function operatorInfluence(cluster: ClusterModel, running: Iterable<Operator>): OpInfluence {
  const infl = new OpInfluence();
  for (const op of running) {
    const region = cluster.getRegion(op.regionId);
    if (region) addOperatorInfluence(infl, op, region);
  }
  return infl;
}
