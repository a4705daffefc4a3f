import type { ClusterModel } from "../core/cluster.js";
import type { StoreInfo } from "../core/store-info.js";

/** A store that may give away peers or leaders: not removed and not down. */
export function isSourceSuitable(cluster: ClusterModel, s: StoreInfo): boolean {
  return !s.isTombstone() && !cluster.isStoreDown(s);
}

/**
 * A store that may receive peers or leaders: Up (not offline or tombstone), heartbeating (not down,
 * nor disconnected: silent for 20 s), not busy.
 */
export function isTargetSuitable(cluster: ClusterModel, s: StoreInfo): boolean {
  return s.isUp() && !cluster.isStoreDown(s) && !cluster.isStoreDisconnected(s) && !s.isBusy();
}

/** Whether a store's peer should be replaced: the store is unknown, offline, removed or down. */
export function isStoreUnhealthy(cluster: ClusterModel, storeId: bigint): boolean {
  const s = cluster.getStore(storeId);
  return !s?.isUp() || cluster.isStoreDown(s);
}

export function byId(a: StoreInfo, b: StoreInfo): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
