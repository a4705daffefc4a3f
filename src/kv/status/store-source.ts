import type { Store } from "../raftstore/index.js";
import type { StoreGaugeSource } from "./store-metrics.js";

/** The gauges' view of a running raftstore. */
export function raftstoreGauges(store: Store): StoreGaugeSource {
  return {
    // Initialized peers: a peer still waiting for its first snapshot holds no data yet.
    regionCount: () => store.regions().length,
    leaderCount: () => {
      let n = 0;
      for (const peer of store.peers.values()) if (peer.isLeader()) n++;
      return n;
    },
    pendingPeerCount: () => {
      let n = 0;
      for (const peer of store.peers.values()) {
        if (!peer.isLeader() || !peer.storage.isInitialized()) continue;
        const truncated = peer.storage.truncatedIndex;
        for (const [id, pr] of peer.raw.progress()) if (id !== peer.meta.id && pr.match < truncated) n++;
      }
      return n;
    },
    snapshotCounts: () => store.snapshotCounts(),
  };
}

/** The JSON `/status` of a raftstore: who it is and what it hosts. */
export function raftstoreStatus(store: Store, addr: string): Record<string, unknown> {
  return {
    store_id: store.storeId.toString(),
    addr,
    regions: store.regions().map((r) => {
      const peer = store.peers.get(r.id);
      return {
        id: r.id.toString(),
        start_key: r.startKey.toString("hex"),
        end_key: r.endKey.toString("hex"),
        leader: peer?.isLeader() ?? false,
        peers: r.peers.map((p) => ({ id: p.id.toString(), store_id: p.storeId.toString() })),
      };
    }),
    snapshots: store.snapshotCounts(),
  };
}
