// A leader's lease rests on every voter that acknowledged it refusing to vote for an election
// timeout. A voter whose peer is still uninitialized (added, its snapshot not installed yet)
// acknowledges the leader's heartbeats, and so counts for a ReadIndex round that renews the
// lease. If its store restarts, the peer is not loaded from disk (it has no region state) but
// created again by the next message, and that new peer must hold its vote for an election
// timeout like a peer loaded at start (PeerLease.holdVotesAfterRestart), or it votes at once and
// a second leader is elected while the first one's lease still serves reads.
import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { RaftStorage, rawKeyspace } from "../../src/kv/storage/index.js";
import { dropWhere, partition } from "../../src/kv/transport/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { ConfChangeType } from "../../src/raft/eraftpb.js";
import { readOn } from "./read-on.js";
import { TestCluster } from "../harness/cluster.js";
import { changePeer, transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

function ctxOn(c: TestCluster, storeId: bigint): Context {
  const store = c.store(storeId)!;
  const region = store.peers.get(1n)!.region;
  return { regionId: 1n, regionEpoch: region.regionEpoch, peer: store.peerMeta(1n), term: 0n };
}

describe("lab2b raft kv: lease and a restarted store's uninitialized peer", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("an uninitialized peer recreated after its store restarts does not vote while the old leader's lease may hold", async () => {
    // 2 s election timeout at 20 ms ticks: a lease of 99 ticks less 10% = 1782 ms.
    const c = new TestCluster({ stores: 3, regionStores: 2, config: { raftElectionTicks: 100 } });
    cluster = c;
    await c.start();
    await c.put("k", "v1");
    await transferLeader(c, 1n, 1n);

    // Store 3's peer stays uninitialized: store 1's snapshots never reach it.
    c.network.addFilter(dropWhere((env) => env.isSnapshot && env.from === 1n));
    await changePeer(c, 1n, ConfChangeType.AddNode, { id: 3n, storeId: 3n });
    await waitFor(() => c.store(2n)?.peers.get(1n)?.region.peers.length === 3, {
      timeoutMs: 10_000,
      message: "store 2 never applied the AddNode",
    });
    await waitFor(() => c.store(3n)?.peers.get(1n) !== undefined, {
      timeoutMs: 10_000,
      message: "store 3 never created its (uninitialized) peer",
    });
    expect(c.store(3n)!.peers.get(1n)!.storage.isInitialized()).toBe(false);

    // Store 2 is cut from the leader: the leader's quorum is itself plus store 3's uninitialized
    // peer, which acknowledges heartbeats (so ReadIndex rounds and the lease) but holds no log.
    c.network.addFilter(partition([1n], [2n]));
    expect(await readOn(c, 1n, "k"), "a ReadIndex round acknowledged by store 3 serves the read").toBe("v1");

    // Store 3 restarts, and store 1 is cut from it: store 1's lease from that round still holds.
    c.network.addFilter(partition([1n], [3n]));
    await c.stopStore(3n);
    await c.startStore(3n);

    // Store 2 has not heard from a leader for long: its election timer may fire any time; say now.
    // It keeps campaigning (a real timer would, every election timeout) until it wins.
    const newLeader = waitFor(
      () => {
        const p = c.store(2n)!.peers.get(1n)!;
        if (p.isLeader()) return true;
        p.handle({ type: "campaign" });
        return false;
      },
      { timeoutMs: 15_000, intervalMs: 50, message: "store 2 never became leader" },
    );
    await newLeader;
    const elected = performance.now();
    // The new leader (with store 3, now given a snapshot by store 2) acknowledges a write...
    await waitFor(
      async () => {
        try {
          await rawKeyspace(new RaftStorage(c.store(2n)!)).write(ctxOn(c, 2n), [
            { kind: "put", cf: CF_DEFAULT, key: Buffer.from("k"), value: Buffer.from("v2") },
          ]);
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000, message: "the new leader never acknowledged the write" },
    );
    // ...so the old leader must not answer a read with the value from before it.
    const old = await readOn(c, 1n, "k");
    expect(
      old,
      `store 1 answered a read after store 2 (leader ${(performance.now() - elected).toFixed(0)} ms ago) acknowledged k=v2`,
    ).not.toBe("v1");
  }, 60_000);
});
