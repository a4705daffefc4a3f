/**
 * A peer-creating message that arrives just before the store stops must not leave work behind:
 * the creation finds the store stopped and drops its messages (it used to replay them into a
 * new creation, reading the raft engine in an endless loop).
 */
import { describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/index.js";
import { MessageType } from "../../src/raft/index.js";
import type { RaftMessage } from "../../src/proto/raft_serverpb.js";
import { TestCluster } from "../harness/cluster.js";

describe("peer creation racing a store stop", () => {
  it("stops reading the raft engine once the store stopped", async () => {
    const c = new TestCluster({ stores: 4, regionStores: 3 }); // store 4 holds no region: the vote may create a peer
    await c.start();
    try {
      const store = c.store(4n)!;
      const raft = store.raftEngine as unknown as { getMeta(k: Buffer): Promise<Buffer | undefined> };
      let reads = 0;
      const getMeta = raft.getMeta.bind(raft);
      raft.getMeta = (k) => {
        reads++;
        return getMeta(k);
      };
      const msg: RaftMessage = {
        regionId: 99n,
        fromPeer: { id: 1001n, storeId: 1n },
        toPeer: { id: 1004n, storeId: 4n },
        message: {
          msgType: MessageType.MsgRequestPreVote,
          to: 1004n,
          from: 1001n,
          term: 6n,
          logTerm: 5n,
          index: 5n,
          entries: [],
          commit: 0n,
          snapshot: undefined,
          reject: false,
          rejectHint: 0n,
          context: Buffer.alloc(0),
        } as Message,
        regionEpoch: { confVer: 1n, version: 1n },
        isTombstone: false,
        startKey: Buffer.alloc(0),
        endKey: Buffer.alloc(0),
      };
      store.onRaftMessage(msg);
      await store.stop();
      const before = reads;
      await new Promise((r) => setTimeout(r, 300));
      expect(reads - before, "raft engine reads after stop").toBeLessThanOrEqual(1);
      expect(store.peers.size).toBe(0);
    } finally {
      await c.shutdown();
    }
  });
});
