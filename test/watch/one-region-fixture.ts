/**
 * The one-region store the feed tests run a feed against: region 1 over the whole key space with
 * one peer, the kv engine as the feed's store, always leader, no raft log to read entries from.
 */
import type { Engine } from "../../src/kv/engine/index.js";
import type { FeedStore } from "../../src/kv/watch/index.js";
import type { Region } from "../../src/proto/metapb.js";

export const peer = { id: 1n, storeId: 1n };

export const region: Region = {
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [peer],
};

/** The feed's view of the store: `engine` as the kv engine, this store leading `of`. */
export function leaderStore(engine: Engine, of: Region = region): FeedStore {
  return {
    kv: engine,
    entryData: async () => undefined,
    replica: () => ({ region: of, isLeader: true, self: peer, leader: peer }),
    read: async () => ({ region: of, snapshot: engine.snapshot() }),
  };
}
