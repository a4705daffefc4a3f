import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { isolate } from "../../src/kv/transport/index.js";
import { RaftStorage, rawKeyspace, RegionError } from "../../src/kv/storage/index.js";
import { TestCluster } from "../harness/cluster.js";
import { genericTest } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("lab3b region split", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("TestOneSplit3B: a growing region splits; each half serves its keys; a lagging store catches up", async () => {
    // Sizes count key + value bytes: ~816 bytes written, so exactly one split.
    cluster = new TestCluster({ stores: 5, config: { regionMaxSize: 700, regionSplitSize: 500 } });
    await cluster.start();
    await cluster.put("k1", "v1");
    await cluster.put("k2", "v2");
    const orig = cluster.regionFor(Buffer.from("k1"))!;
    expect(cluster.regionFor(Buffer.from("k2"))!.id).toBe(orig.id);
    cluster.network.addFilter(isolate(5n));
    for (let i = 100; i < 200; i++) await cluster.put(`k${i}`, `v${i}`);
    await sleep(200);
    cluster.network.clearFilters();
    const split = await waitFor(
      () => {
        const left = cluster!.regionFor(Buffer.from("k1"))!;
        const right = cluster!.regionFor(Buffer.from("k2"))!;
        return left.id !== right.id ? { left, right } : undefined;
      },
      { timeoutMs: 10_000, message: "k1 and k2 never ended up in different regions" },
    );
    expect(split.left.startKey.equals(orig.startKey)).toBe(true);
    expect(split.left.endKey.equals(split.right.startKey)).toBe(true);
    expect(split.right.endKey.equals(orig.endKey)).toBe(true);
    // A read of k2 routed to the left region is refused with KeyNotInRegion.
    const leaderStore = await waitFor(() => cluster!.leaderOf(split.left.id), {
      timeoutMs: 5000,
      message: "left region has no leader",
    });
    const storage = rawKeyspace(new RaftStorage(cluster.store(leaderStore)!));
    const reader = await storage.reader({
      regionId: split.left.id,
      regionEpoch: split.left.regionEpoch,
      peer: cluster.store(leaderStore)!.peerMeta(split.left.id),
      term: 0n,
    });
    const err = await reader.getCF(CF_DEFAULT, Buffer.from("k2")).then(
      () => undefined,
      (e: unknown) => e,
    );
    await reader.close();
    expect(
      err instanceof RegionError && err.pb.keyNotInRegion !== undefined,
      "reading k2 from the left region must fail with KeyNotInRegion",
    ).toBe(true);
    expect((await cluster.get("k2"))?.toString()).toBe("v2");
    await waitFor(async () => (await cluster!.engineGet(5n, "k100"))?.toString() === "v100", {
      timeoutMs: 10_000,
      message: "store 5 never caught up with k100",
    });
  });

  it("TestSplitRecover3B", () => genericTest({ part: "3B", clients: 1, crash: true, split: true }));
  it("TestSplitRecoverManyClients3B", () => genericTest({ part: "3B", clients: 20, crash: true, split: true }));
  it("TestSplitUnreliable3B", () => genericTest({ part: "3B", clients: 5, unreliable: true, split: true }));
  it("TestSplitUnreliableRecover3B", () =>
    genericTest({ part: "3B", clients: 5, unreliable: true, crash: true, split: true }));
  it("TestSplitConfChangeSnapshotUnreliableRecover3B", () =>
    genericTest({
      part: "3B",
      clients: 5,
      unreliable: true,
      crash: true,
      maxRaftLog: 100,
      confChange: true,
      split: true,
    }));
  it("TestSplitConfChangeSnapshotUnreliableRecoverConcurrentPartition3B", () =>
    genericTest({
      part: "3B",
      clients: 5,
      unreliable: true,
      crash: true,
      partitions: true,
      maxRaftLog: 100,
      confChange: true,
      split: true,
    }));
});
