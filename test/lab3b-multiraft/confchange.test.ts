import { afterEach, describe, expect, it } from "vitest";
import { ConfChangeType } from "../../src/raft/eraftpb.js";
import { TestCluster } from "../harness/cluster.js";
import { changePeer, genericTest, transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

async function expectOnStore(
  cluster: TestCluster,
  store: bigint,
  key: string,
  value: string | undefined,
): Promise<void> {
  await waitFor(async () => (await cluster.engineGet(store, key))?.toString() === value, {
    timeoutMs: 10_000,
    message: `store ${store} never reached ${key}=${value ?? "<absent>"}`,
  });
}

describe("lab3b membership change and leader transfer", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("TestTransferLeader3B: leadership moves to each store in turn", async () => {
    cluster = new TestCluster({ stores: 5 });
    await cluster.start();
    await cluster.put("k", "v");
    for (const id of [1n, 2n, 3n, 4n, 5n]) await transferLeader(cluster, 1n, id);
    expect((await cluster.get("k"))?.toString()).toBe("v");
  });

  it("TestBasicConfChange3B: remove and add peers while writing; a removed store's data is cleared", async () => {
    cluster = new TestCluster({ stores: 5 });
    await cluster.start();
    await transferLeader(cluster, 1n, 1n);
    for (const id of [2n, 3n, 4n, 5n]) await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id, storeId: id });
    await cluster.put("k1", "v1");
    expect((await cluster.get("k1"))?.toString()).toBe("v1");
    expect(await cluster.engineGet(2n, "k1")).toBeUndefined();

    await changePeer(cluster, 1n, ConfChangeType.AddNode, { id: 2n, storeId: 2n });
    await cluster.put("k2", "v2");
    await expectOnStore(cluster, 2n, "k1", "v1");
    await expectOnStore(cluster, 2n, "k2", "v2");
    const region = cluster.store(1n)!.peers.get(1n)!.region;
    expect(region.regionEpoch!.confVer > 1n).toBe(true);

    await changePeer(cluster, 1n, ConfChangeType.AddNode, { id: 3n, storeId: 3n });
    await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id: 2n, storeId: 2n });
    await cluster.put("k3", "v3");
    await expectOnStore(cluster, 3n, "k3", "v3");
    await expectOnStore(cluster, 2n, "k1", undefined);
    await expectOnStore(cluster, 2n, "k2", undefined);

    // Re-adding the same peer id, then the same store with a new peer id.
    await changePeer(cluster, 1n, ConfChangeType.AddNode, { id: 2n, storeId: 2n });
    await cluster.put("k4", "v4");
    await expectOnStore(cluster, 2n, "k4", "v4");
    await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id: 2n, storeId: 2n });
    await changePeer(cluster, 1n, ConfChangeType.AddNode, { id: 4n, storeId: 2n });
    await cluster.put("k5", "v5");
    await expectOnStore(cluster, 2n, "k1", "v1");
    await expectOnStore(cluster, 2n, "k5", "v5");
    await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id: 3n, storeId: 3n });
    await expectOnStore(cluster, 3n, "k1", undefined);
  });

  it("TestConfChangeRemoveLeader3B: the leader can remove itself and the region keeps serving", async () => {
    cluster = new TestCluster({ stores: 5 });
    await cluster.start();
    await transferLeader(cluster, 1n, 1n);
    await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id: 1n, storeId: 1n });
    await cluster.put("k1", "v1");
    await expectOnStore(cluster, 1n, "k1", undefined);
    await changePeer(cluster, 1n, ConfChangeType.AddNode, { id: 1n, storeId: 1n });
    await transferLeader(cluster, 1n, 1n);
    await expectOnStore(cluster, 1n, "k1", "v1");
    for (const id of [2n, 3n, 4n]) await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id, storeId: id });
    await changePeer(cluster, 1n, ConfChangeType.RemoveNode, { id: 1n, storeId: 1n });
    await cluster.put("k2", "v2");
    await expectOnStore(cluster, 5n, "k2", "v2");
    await expectOnStore(cluster, 1n, "k2", undefined);
  });

  it("TestConfChangeRecover3B", () => genericTest({ part: "3B", clients: 1, crash: true, confChange: true }));
  it("TestConfChangeRecoverManyClients3B", () =>
    genericTest({ part: "3B", clients: 20, crash: true, confChange: true }));
  it("TestConfChangeUnreliable3B", () => genericTest({ part: "3B", clients: 5, unreliable: true, confChange: true }));
  it("TestConfChangeUnreliableRecover3B", () =>
    genericTest({ part: "3B", clients: 5, unreliable: true, crash: true, confChange: true }));
  it("TestConfChangeSnapshotUnreliableRecover3B", () =>
    genericTest({ part: "3B", clients: 5, unreliable: true, crash: true, maxRaftLog: 100, confChange: true }));
  it("TestConfChangeSnapshotUnreliableRecoverConcurrentPartition3B", () =>
    genericTest({
      part: "3B",
      clients: 5,
      unreliable: true,
      crash: true,
      partitions: true,
      maxRaftLog: 100,
      confChange: true,
    }));
});
