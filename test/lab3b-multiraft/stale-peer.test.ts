/**
 * Peers that should be gone are gone: a peer removed while its store was down learns it and
 * destroys itself (its range must not stay blocked on that store), and a peer being destroyed is
 * not recreated by a message arriving while its data is cleared.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConfChangeType, MessageType } from "../../src/raft/eraftpb.js";
import { TestCluster } from "../harness/cluster.js";
import { changePeer } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

describe("stale peers", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("a peer removed while its store was down is collected once the store returns, and the store can host the range again", async () => {
    const c = (cluster = new TestCluster({ stores: 6, regionStores: 3 }));
    await c.start();
    await c.put("k", "v0");
    await c.stopStore(3n);
    // Move region 1 from stores {1,2,3} to {4,5,6} while store 3 is down: every store its stale
    // peer knows has left the region too.
    await changePeer(c, 1n, ConfChangeType.AddNode, { id: 14n, storeId: 4n });
    await changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 3n, storeId: 3n });
    await changePeer(c, 1n, ConfChangeType.AddNode, { id: 15n, storeId: 5n });
    await changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 2n, storeId: 2n });
    await changePeer(c, 1n, ConfChangeType.AddNode, { id: 16n, storeId: 6n });
    await changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 1n, storeId: 1n });
    await c.put("k", "v1");
    await waitFor(() => !c.store(1n)!.peers.has(1n) && !c.store(2n)!.peers.has(1n), {
      timeoutMs: 10_000,
      message: "stores 1 and 2 destroyed their peers",
    });

    await c.startStore(3n);
    await waitFor(() => !c.store(3n)!.peers.has(1n), {
      timeoutMs: 10_000,
      get message() {
        return `the stale peer on store 3 was never collected\n${c.dump()}`;
      },
    });
    // The range is free on store 3 again: the region can come back to it.
    await changePeer(c, 1n, ConfChangeType.AddNode, { id: 23n, storeId: 3n });
    await waitFor(async () => (await c.engineGet(3n, "k"))?.toString() === "v1", {
      timeoutMs: 10_000,
      message: "store 3 caught up with region 1 again",
    });
  });

  it("a message arriving while a removed peer's data is cleared does not recreate the peer", async () => {
    const c = (cluster = new TestCluster({ stores: 3 }));
    await c.start();
    await c.put("k", "v");
    const store3 = c.store(3n)!;
    // Hold the destroy in its data-clearing step (the slow, awaited part of a destroy).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let clearing = false;
    const loop = store3.worker as unknown as { clearRange: (...args: unknown[]) => Promise<void> };
    const clearRange = loop.clearRange.bind(loop);
    loop.clearRange = async (...args: unknown[]) => {
      clearing = true;
      await gate;
      return clearRange(...args);
    };
    const removal = changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 3n, storeId: 3n });
    await waitFor(() => clearing, { timeoutMs: 10_000, message: "store 3 started destroying its peer" });
    // A late vote of the old configuration, as a partitioned peer of region 1 would send it.
    store3.onRaftMessage({
      regionId: 1n,
      fromPeer: { id: 2n, storeId: 2n },
      toPeer: { id: 3n, storeId: 3n },
      message: {
        msgType: MessageType.MsgRequestVote,
        to: 3n,
        from: 2n,
        term: 100n,
        logTerm: 100n,
        index: 1000n,
        entries: [],
        commit: 0n,
        snapshot: undefined,
        reject: false,
        rejectHint: 0n,
        context: Buffer.alloc(0),
      } as never,
      regionEpoch: { confVer: 1n, version: 1n },
      isTombstone: false,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
    });
    await new Promise((r) => setTimeout(r, 100)); // creation (if any) loads raft state asynchronously
    try {
      expect(
        store3.peers.has(1n),
        `no peer of region 1 is created while the old one is being destroyed\n${c.dump()}`,
      ).toBe(false);
    } finally {
      release(); // never leave the destroy hanging, whatever the assertion said
    }
    await removal;
    await new Promise((r) => setTimeout(r, 200));
    expect(store3.peers.has(1n), `store 3 must not hold region 1 again\n${c.dump()}`).toBe(false);
  });
});
