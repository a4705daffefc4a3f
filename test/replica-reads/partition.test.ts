// A follower cut off from its leader, in one process (3 stores, in-memory network): it must not
// answer a replica read with what it has, and its safe ts stops, so stale reads above it are
// refused while stale reads at or below it still see exactly the commits up to their ts.
import { afterEach, describe, expect, it } from "vitest";
import { ResolvedTsWorker } from "../../src/kv/raftstore/index.js";
import { TxnHandlers } from "../../src/kv/server/index.js";
import { RaftStorage, RegionError, rawKeyspace } from "../../src/kv/storage/index.js";
import { dropWhere, isolate } from "../../src/kv/transport/index.js";
import { MessageType } from "../../src/proto/eraftpb.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { Lock } from "../../src/txn/index.js";
import { silentLogger } from "../../src/util/logger.js";
import { realRuntime } from "../../src/util/runtime.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

let cluster: TestCluster | undefined;
const workers: ResolvedTsWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) w.stop();
  await cluster?.shutdown();
  cluster = undefined;
});

/** A TSO for one process: physical ms << 18 | a counter, strictly increasing. */
function localTso(): () => Promise<bigint> {
  let last = 0n;
  return async () => {
    const now = BigInt(Date.now()) << 18n;
    last = now > last ? now : last + 1n;
    return last;
  };
}

async function threeStores(): Promise<{ c: TestCluster; leader: bigint; follower: bigint }> {
  const c = (cluster = new TestCluster({ stores: 3 }));
  await c.start();
  await c.put("warm-up", "1");
  const leader = await waitFor(() => c.leaderOf(1n), { timeoutMs: 10_000, message: "region 1 elected no leader" });
  return { c, leader, follower: c.storeIds.find((id) => id !== leader)! };
}

function contextAt(c: TestCluster, storeId: bigint, flags: Pick<Context, "replicaRead" | "staleRead">): Context {
  const region = c.store(storeId)!.peers.get(1n)!.region;
  return { regionId: 1n, regionEpoch: region.regionEpoch, peer: c.store(storeId)!.peerMeta(1n), term: 0n, ...flags };
}

/** A raw replica read at one store: the value, or the region error it answered. */
async function replicaGet(c: TestCluster, storeId: bigint, key: string): Promise<string | undefined | RegionError> {
  const storage = rawKeyspace(new RaftStorage(c.store(storeId)!));
  try {
    const reader = await storage.reader(contextAt(c, storeId, { replicaRead: true }));
    try {
      return (await reader.getCF("default", Buffer.from(key)))?.toString();
    } finally {
      await reader.close();
    }
  } catch (err) {
    if (err instanceof RegionError) return err;
    throw err;
  }
}

describe("replica reads on a follower that lags the leader", () => {
  it("never answer with a value older than an acknowledged write", async () => {
    const { c, follower } = await threeStores();
    await c.put("k", "v0");
    expect(
      await waitFor(async () => ((await replicaGet(c, follower, "k")) === "v0" ? "v0" : undefined), {
        timeoutMs: 10_000,
        message: "the follower never served the replica read",
      }),
    ).toBe("v0");
    // The follower still hears the leader's heartbeats (it knows who leads and can ask for a
    // read index) but gets no appends: its log, and so its data, stay behind.
    const heal = c.network.addFilter(
      dropWhere((env) => env.to === follower && env.msg.message?.msgType === MessageType.MsgAppend),
    );
    await c.put("k", "v1"); // acknowledged by the other two
    const lagging = await replicaGet(c, follower, "k");
    expect(lagging, "a follower that cannot apply up to the read index times out, never serves v0").toBeInstanceOf(
      RegionError,
    );
    heal();
    const cut = c.network.addFilter(isolate(follower));
    expect(await replicaGet(c, follower, "k"), "cut off from the leader: refused or timed out").toBeInstanceOf(
      RegionError,
    );
    cut();
    expect(
      await waitFor(async () => ((await replicaGet(c, follower, "k")) === "v1" ? "v1" : undefined), {
        timeoutMs: 10_000,
        message: "after the heal the follower never served v1",
      }),
    ).toBe("v1");
  });
});

describe("stale reads on a follower whose safe ts stopped", () => {
  it("are refused above its safe ts and exact at or below it", async () => {
    const { c, leader, follower } = await threeStores();
    const tso = localTso();
    for (const id of c.storeIds) {
      const w = new ResolvedTsWorker(
        c.store(id)!,
        { tso, lockStartTs: (record) => Lock.parse(record).ts },
        50,
        silentLogger,
        realRuntime,
      );
      w.start();
      workers.push(w);
    }
    const leaderTxn = () => new TxnHandlers(new RaftStorage(c.store(c.leaderOf(1n) ?? leader)!));
    const key = Buffer.from("st");
    const commit = async (value: string) => {
      const startVersion = await tso();
      const ctx = contextAt(c, c.leaderOf(1n) ?? leader, {});
      const pw = await leaderTxn().kvPrewrite({
        context: ctx,
        mutations: [{ op: Op.Put, key, value: Buffer.from(value) }],
        primaryLock: key,
        startVersion,
        lockTtl: 10_000n,
      });
      expect(pw.errors).toEqual([]);
      const commitVersion = await tso();
      const cm = await leaderTxn().kvCommit({ context: ctx, startVersion, keys: [key], commitVersion });
      expect(cm.regionError ?? cm.error).toBeUndefined();
      return commitVersion;
    };
    const staleGet = (version: bigint) =>
      new TxnHandlers(new RaftStorage(c.store(follower)!)).kvGet({
        context: contextAt(c, follower, { staleRead: true }),
        key,
        version,
      });

    const firstCommit = await commit("one");
    const afterFirst = await tso();
    const served = await waitFor(
      async () => {
        const r = await staleGet(afterFirst);
        return r.regionError ? undefined : r;
      },
      { timeoutMs: 10_000, message: "the follower's safe ts never reached a ts after the first commit" },
    );
    expect(served.value.toString()).toBe("one");
    expect((await staleGet(firstCommit - 1n)).notFound, "before the first commit: nothing").toBe(true);

    const heal = c.network.addFilter(isolate(follower));
    const safeTs = c.store(follower)!.peers.get(1n)!.safeTs.value;
    await commit("two"); // committed by the other two, after the follower's safe ts
    const afterSecond = await tso();
    const refused = await staleGet(afterSecond);
    expect(refused.regionError?.dataIsNotReady, "above its safe ts the cut-off follower is not ready").toBeDefined();
    expect(refused.regionError!.dataIsNotReady!.safeTs).toBeLessThan(afterSecond);
    // At or below its safe ts it still answers, with the first value: the second came later.
    const old = await staleGet(safeTs);
    expect(old.regionError).toBeUndefined();
    expect(old.value.toString()).toBe("one");
    heal();
  });
});
