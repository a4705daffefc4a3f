import { afterEach, describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import { dropWhere, isolate } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const value = (i: number) => `value-${i}-${"x".repeat(2000)}`;

/**
 * The entry cache is bounded in bytes: a follower behind the cache (but not behind the log)
 * catches up from entries the leader reads back from its raft engine, not by snapshot, and a
 * restarted store holds only its unapplied entries in memory.
 */
describe("lab2c raft entry cache bounded in bytes", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("a follower behind the 16 KiB cache catches up from disk without a snapshot; memory stays under the cache limit", async () => {
    cluster = new TestCluster({ stores: 3, config: { raftEntryCacheSize: 16 * 1024 } });
    await cluster.start();
    await cluster.put("k0", value(0));
    let snapshots = 0;
    cluster.network.addFilter(
      dropWhere((env) => {
        if (env.isSnapshot || env.msg.message?.msgType === MessageType.MsgSnapshot) snapshots++;
        return false;
      }),
    );
    const lagging = cluster.storeIds.find((id) => id !== cluster!.leaderOf(1n))!;
    cluster.network.addFilter(isolate(lagging));
    for (let i = 1; i <= 60; i++) await cluster.put(`k${i}`, value(i));
    const leader = cluster.store(cluster.leaderOf(1n)!)!.peers.get(1n)!;
    expect(leader.storage.cachedBytes, "the leader's cache must stay near its limit").toBeLessThan(
      16 * 1024 + 4 * 1024,
    );
    expect(leader.storage.logBytes, "60 × 2 KiB are in the log").toBeGreaterThan(100 * 1024);

    cluster.network.clearFilters();
    cluster.network.addFilter(
      dropWhere((env) => {
        if (env.isSnapshot || env.msg.message?.msgType === MessageType.MsgSnapshot) snapshots++;
        return false;
      }),
    );
    await waitFor(async () => (await cluster!.engineGet(lagging, "k60"))?.toString() === value(60), {
      timeoutMs: 10_000,
      message: `store ${lagging} never caught up to k60`,
    });
    for (const i of [1, 17, 42, 60]) expect((await cluster.engineGet(lagging, `k${i}`))?.toString()).toBe(value(i));
    expect(snapshots, "the follower must catch up from the log, not by snapshot").toBe(0);
    // Once every follower has everything, an idle region holds no entries in memory at all:
    // otherwise each of many regions would keep its full budget.
    await cluster.put("k61", "small");
    await waitFor(
      () => [...cluster!.storeIds].every((id) => cluster!.store(id)!.peers.get(1n)!.storage.cachedBytes === 0),
      {
        timeoutMs: 5000,
        message: "every replica of the idle region drops its cached entries",
      },
    );

    // After a restart only unapplied entries are loaded into memory.
    await cluster.stopStore(lagging);
    await cluster.startStore(lagging);
    const restarted = cluster.store(lagging)!.peers.get(1n)!;
    expect(restarted.storage.cachedBytes).toBeLessThan(restarted.storage.logBytes);
    expect(restarted.storage.cachedBytes).toBeLessThan(16 * 1024 + 4 * 1024);
    await cluster.put("after-restart", "ok");
    expect((await cluster.get("k33"))?.toString()).toBe(value(33));
  });
});
