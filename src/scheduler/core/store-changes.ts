import { Store, StoreState } from "../../proto/metapb.js";
import { isDialableStatusAddr } from "../../util/http-status.js";
import { InvalidRequestError, SchedulerError, StoreStateError } from "../errors.js";
import type { ClusterModel } from "./cluster.js";
import type { StoreInfo } from "./store-info.js";

// The rules a store's metadata must pass before the scheduler saves it. Each checks the change
// against the cluster model and returns the Store to save, or throws why the change is refused.

/** The metadata to save for a PutStore of `store`: a new store, or a known one that re-registers. */
export function storeToRegister(cluster: ClusterModel, store: Store | undefined): Store {
  if (!store || store.id === 0n) throw new InvalidRequestError("put store: missing store or store id 0");
  const existing = cluster.getStore(store.id);
  if (existing?.isTombstone()) throw SchedulerError.storeTombstone(store.id);
  for (const s of cluster.getStores()) {
    if (s.id !== store.id && !s.isTombstone() && s.meta.address === store.address && store.address !== "") {
      throw new InvalidRequestError(`duplicated store address: ${store.address} is used by store ${s.id}`);
    }
  }
  if (store.statusAddress !== "" && !isDialableStatusAddr(store.statusAddress)) {
    throw new InvalidRequestError(
      `put store ${store.id}: status address ${JSON.stringify(store.statusAddress.slice(0, 80))} is not a dialable host:port`,
    );
  }
  return Store.create({
    id: store.id,
    address: store.address,
    state: existing?.meta.state ?? StoreState.Up,
    statusAddress: store.statusAddress,
  });
}

/**
 * The metadata to save for store `s` in `state`. A tombstone stays one; only an Offline store that
 * holds no region may become one (the scheduler could no longer move its replicas).
 */
export function storeWithState(cluster: ClusterModel, s: StoreInfo, state: StoreState): Store {
  if (s.isTombstone() && state !== StoreState.Tombstone) throw SchedulerError.storeTombstone(s.id);
  if (state === StoreState.Tombstone && !s.isTombstone()) {
    const from = StoreState[s.meta.state] ?? String(s.meta.state);
    if (!s.isOffline()) {
      throw new StoreStateError(
        s.id,
        from,
        "Tombstone",
        "only an Offline store can become a tombstone; set it offline first so its regions move away",
      );
    }
    const left = cluster.regions.statsOf(s.id).regionCount;
    if (left > 0) {
      throw new StoreStateError(
        s.id,
        from,
        "Tombstone",
        `it still holds ${left} region${left === 1 ? "" : "s"}; wait until the scheduler has moved them all away`,
      );
    }
  }
  return Store.create({ ...s.meta, state });
}
