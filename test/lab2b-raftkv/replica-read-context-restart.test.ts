// A follower's replica read is forwarded to the leader as a ReadIndex whose context names the
// read (reads.ts). The leader's raft merges a ReadIndex whose context is already pending into
// that older request (read-only.ts, as etcd). So a context must never repeat: if a restarted
// follower numbers its reads from 1 again, its new read can be merged into a request its previous
// incarnation sent before a write, and be answered with that older read index: a stale read.
import { afterEach, describe, expect, it } from "vitest";
import { dropWhere } from "../../src/kv/transport/index.js";
import { MessageType } from "../../src/raft/index.js";
import { readOn } from "./read-on.js";
import { TestCluster } from "../harness/cluster.js";
import { transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

/** A replica read of k on store `storeId`'s peer of region 1; "<refused>" when refused. */
async function replicaRead(c: TestCluster, storeId: bigint, key: string): Promise<string> {
  return (await readOn(c, storeId, key, { replicaRead: true })) ?? "<refused>";
}

/** How many read batches the peer has numbered so far (ReadQueue's private counter). */
function readSeq(c: TestCluster, storeId: bigint): number {
  return (c.store(storeId)!.peers.get(1n) as unknown as { reads: { seq: number } }).reads.seq;
}

describe("lab2b raft kv: replica read contexts across a follower restart", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("a restarted follower's replica read is not answered with its previous incarnation's read index", async () => {
    // A long election timeout: the leader keeps leading while its heartbeat answers are held back.
    const c = new TestCluster({ stores: 3, config: { raftElectionTicks: 100 } });
    cluster = c;
    await c.start();
    await c.put("k", "v1");
    await transferLeader(c, 1n, 1n);
    await waitFor(async () => (await c.engineGet(2n, "k"))?.toString() === "v1", {
      timeoutMs: 10_000,
      message: "store 2 never applied k=v1",
    });

    // The leader's ReadIndex rounds do not complete for now (heartbeat answers with a read
    // context are lost), and store 2 gets no more entries (it stays at k=v1).
    const removeAcks = c.network.addFilter(
      dropWhere(
        (env) =>
          env.to === 1n &&
          env.msg.message?.msgType === MessageType.MsgHeartbeatResponse &&
          (env.msg.message.context?.length ?? 0) > 0,
      ),
    );
    c.network.addFilter(dropWhere((env) => env.to === 2n && env.msg.message?.msgType === MessageType.MsgAppend));
    let readIndexesFrom2 = 0;
    c.network.addFilter((env) => {
      if (env.from === 2n && env.to === 1n && env.msg.message?.msgType === MessageType.MsgReadIndex) readIndexesFrom2++;
      return true;
    });

    // Store 2's replica read reaches the leader (at commit index of k=v1) and waits there.
    const oldSeq = readSeq(c, 2n) + 1;
    const oldRead = replicaRead(c, 2n, "k");
    await waitFor(() => readIndexesFrom2 === 1, { timeoutMs: 5_000, message: "store 2's ReadIndex never reached 1" });

    // Store 2 restarts (its pending read is refused); meanwhile the leader and store 3 commit k=v2.
    await c.stopStore(2n);
    expect(await oldRead).toBe("<refused>");
    await c.startStore(2n);
    await c.put("k", "v2");
    await waitFor(() => c.store(2n)!.peers.get(1n)!.leader() !== undefined, {
      timeoutMs: 5_000,
      message: "restarted store 2 never learned the leader",
    });

    // Reads issued after k=v2 was acknowledged. The restarted peer numbers its reads afresh; the
    // one numbered as the old pending read must still see k=v2 (or be refused).
    const reads: Array<Promise<string>> = [];
    while (readSeq(c, 2n) < oldSeq) {
      const before = readIndexesFrom2;
      reads.push(replicaRead(c, 2n, "k"));
      await waitFor(() => readIndexesFrom2 > before, { timeoutMs: 5_000, message: "a ReadIndex from 2 never arrived" });
    }
    removeAcks();
    const values = await Promise.all(reads);
    expect(values.at(-1), `replica reads on restarted store 2 after k=v2 was acknowledged: ${values}`).not.toBe("v1");
    for (const v of values) expect(v).not.toBe("v1");
  }, 60_000);
});
