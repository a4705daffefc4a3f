import { afterEach, describe, expect, it } from "vitest";
import { CF_LOCK } from "../../src/kv/engine/index.js";
import { partition } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { genericTest } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("lab2c snapshots", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("TestOneSnapshot2C: a partitioned store catches up by snapshot, deletes included, and logs stay trimmed", async () => {
    cluster = new TestCluster({ stores: 3, config: { raftLogGcCountLimit: 10 } });
    await cluster.start();
    await cluster.put("k1", "v1", CF_LOCK);
    await cluster.put("k2", "v2", CF_LOCK);
    for (const id of cluster.storeIds) {
      await waitFor(async () => (await cluster!.engineGet(id, "k2", CF_LOCK))?.toString() === "v2", {
        timeoutMs: 5000,
        message: `store ${id} never got k2`,
      });
    }
    // Keep store 1 out of the majority.
    const leader = cluster.leaderOf(1n);
    const lonely = 1n;
    cluster.network.addFilter(
      partition(
        [lonely],
        cluster.storeIds.filter((id) => id !== lonely),
      ),
    );
    if (leader === lonely)
      await waitFor(() => cluster!.leaderOf(1n) !== undefined && cluster!.leaderOf(1n) !== lonely, {
        timeoutMs: 10_000,
        message: "no new leader in the majority",
      });
    for (let i = 100; i < 115; i++) await cluster.put(`k${i}`, `v${i}`, CF_LOCK);
    await cluster.delete("k2", CF_LOCK);
    await sleep(500);
    expect(
      await cluster.engineGet(lonely, "k100", CF_LOCK),
      "the partitioned store must not have new data",
    ).toBeUndefined();
    // The majority compacted its log past what store 1 has: it can only catch up by snapshot.
    const majorityPeer = cluster.store(2n)!.peers.get(1n)!;
    await waitFor(
      () => majorityPeer.storage.truncatedIndex > cluster!.store(lonely)!.peers.get(1n)!.storage.lastIndex(),
      {
        timeoutMs: 5000,
        message: "the majority never compacted its log",
      },
    );
    cluster.network.clearFilters();
    await waitFor(async () => (await cluster!.engineGet(lonely, "k100", CF_LOCK))?.toString() === "v100", {
      timeoutMs: 10_000,
      message: "store 1 never caught up",
    });
    expect((await cluster.engineGet(lonely, "k1", CF_LOCK))?.toString()).toBe("v1");
    expect(
      await cluster.engineGet(lonely, "k2", CF_LOCK),
      "a key deleted while partitioned must be gone after the snapshot",
    ).toBeUndefined();
    // And it survives a restart.
    await cluster.stopStore(lonely);
    await cluster.startStore(lonely);
    expect((await cluster.engineGet(lonely, "k114", CF_LOCK))?.toString()).toBe("v114");
    for (let i = 0; i < 30; i++) await cluster.put(`more${i}`, "x");
    await sleep(300);
    for (const id of cluster.storeIds) {
      const st = cluster.store(id)!.peers.get(1n)!.storage;
      expect(
        st.appliedIndex - st.truncatedIndex <= 20n,
        `store ${id}: ${st.appliedIndex - st.truncatedIndex} entries in the log`,
      ).toBe(true);
    }
  });

  it("TestSnapshotRecover2C", () => genericTest({ part: "2C", clients: 1, crash: true, maxRaftLog: 100 }));
  it("TestSnapshotRecoverManyClients2C", () => genericTest({ part: "2C", clients: 20, crash: true, maxRaftLog: 100 }));
  it("TestSnapshotUnreliable2C", () => genericTest({ part: "2C", clients: 5, unreliable: true, maxRaftLog: 100 }));
  it("TestSnapshotUnreliableRecover2C", () =>
    genericTest({ part: "2C", clients: 5, unreliable: true, crash: true, maxRaftLog: 100 }));
  it("TestSnapshotUnreliableRecoverConcurrentPartition2C", () =>
    genericTest({ part: "2C", clients: 5, unreliable: true, crash: true, partitions: true, maxRaftLog: 100 }));
});
