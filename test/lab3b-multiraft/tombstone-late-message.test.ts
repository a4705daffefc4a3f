/**
 * A tombstone must stop the destroyed peer from coming back. Here peer 3 misses a split and its
 * own removal (store 3 is cut off), is collected by a GC answer when store 3 returns, and so
 * leaves a tombstone with the epoch it last applied (conf_ver 1, version 1). A late vote from
 * a member that applied the split but not yet the removal (epoch 1/2, old membership {1,2,3})
 * is addressed to that same peer id 3. It must be dropped: a recreated, empty peer 3 grants its
 * vote, and with it a stale member that lacks committed entries can win an election in the old
 * membership (TiKV drops messages to a peer id at or below the tombstone's peer id).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConfChangeType, MessageType } from "../../src/raft/eraftpb.js";
import { isolate } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { changePeer, transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

describe("tombstoned peer ids", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("a late vote to a collected peer's own id does not recreate it, and it grants no vote", async () => {
    const c = (cluster = new TestCluster({ stores: 3 }));
    await c.start();
    await c.put("a", "1");
    await transferLeader(c, 1n, 1n);
    const heal = c.network.addFilter(isolate(3n));
    const leader = c.store(1n)!;
    const region = leader.peers.get(1n)!.region;
    const split = await leader.proposeSplit(1n, region.regionEpoch!, Buffer.from("m"), 2n, [101n, 102n, 103n]);
    expect(split.header?.error).toBeUndefined();
    await changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 3n, storeId: 3n });
    let injected = false;
    const votes: Array<{ reject: boolean; afterInjection: boolean }> = [];
    c.network.addFilter((env) => {
      const m = env.msg.message!;
      if (env.from === 3n && env.msg.regionId === 1n && m.msgType === MessageType.MsgRequestVoteResponse)
        votes.push({ reject: m.reject, afterInjection: injected });
      return true;
    });
    heal();
    const store3 = c.store(3n)!;
    await waitFor(() => !store3.peers.has(1n) && store3.tombstones.has(1n), {
      timeoutMs: 10_000,
      get message() {
        return `the stale peer 3 was never collected\n${c.dump()}`;
      },
    });
    // The tombstone is what peer 3 last applied: before the split and before its removal.
    expect(store3.tombstones.get(1n)!.regionEpoch).toEqual({ confVer: 1n, version: 1n });

    const recreated: bigint[] = [];
    const addPeer = store3.addPeer.bind(store3);
    store3.addPeer = (peer) => {
      if (peer.regionId === 1n) recreated.push(peer.meta.id);
      addPeer(peer);
    };
    injected = true;
    // A vote from peer 2 as it was after the split and before the removal (a delayed message).
    store3.onRaftMessage({
      regionId: 1n,
      fromPeer: { id: 2n, storeId: 2n },
      toPeer: { id: 3n, storeId: 3n },
      message: {
        msgType: MessageType.MsgRequestVote,
        to: 3n,
        from: 2n,
        term: 100n,
        logTerm: 7n,
        index: 8n,
        entries: [],
        commit: 0n,
        snapshot: undefined,
        reject: false,
        rejectHint: 0n,
        context: Buffer.alloc(0),
      } as never,
      regionEpoch: { confVer: 1n, version: 2n },
      isTombstone: false,
      startKey: Buffer.alloc(0),
      endKey: Buffer.from("m"),
    });
    await new Promise((r) => setTimeout(r, 300)); // creation (if any) loads raft state asynchronously
    expect(recreated, `store 3 recreated the collected peer 3 of region 1\n${c.dump()}`).toEqual([]);
    expect(
      votes.filter((v) => !v.reject && v.afterInjection),
      "store 3 granted a vote for region 1 after leaving it",
    ).toEqual([]);
  });
});
