/**
 * The txn handlers run unchanged on RaftStorage: a 3-store in-process cluster (test/harness),
 * 2PC through the leader replicates to every store, and a follower answers the NotLeader region
 * error in the response's region_error, untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TxnHandlers } from "../../src/kv/server/index.js";
import { RaftStorage, RegionError } from "../../src/kv/storage/index.js";
import { CF_WRITE } from "../../src/kv/engine/index.js";
import type { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import { Context, Op } from "../../src/proto/kvrpcpb.js";
import { encodeKey, Write, WriteKind } from "../../src/txn/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

describe("lab4 txn on RaftStorage (3 stores)", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = new TestCluster({ stores: 3 });
    await cluster.start();
  });
  afterAll(() => cluster.shutdown());

  /** Calls a txn handler on the key's region leader, retrying while the response carries a region error. */
  function onLeader<R extends { regionError?: RegionErrorPb | undefined }>(
    key: Buffer,
    what: string,
    call: (h: TxnHandlers, ctx: Context) => Promise<R>,
  ): Promise<R> {
    return cluster.onLeader(key, what, async (storage, ctx) => {
      const res = await call(new TxnHandlers(storage), ctx);
      if (res.regionError) throw new RegionError(res.regionError);
      return res;
    });
  }

  it("prewrite, commit and get through the leader; the write record reaches every store", async () => {
    const k1 = Buffer.from("alice");
    const k2 = Buffer.from("bob");
    const pre = await onLeader(k1, "prewrite", (h, context) =>
      h.kvPrewrite({
        context,
        startVersion: 100n,
        primaryLock: k1,
        lockTtl: 3000n,
        mutations: [
          { op: Op.Put, key: k1, value: Buffer.from("10") },
          { op: Op.Put, key: k2, value: Buffer.from("20") },
        ],
      }),
    );
    expect(pre.errors).toEqual([]);
    const locked = await onLeader(k1, "get while locked", (h, context) => h.kvGet({ context, key: k1, version: 105n }));
    expect(locked.error?.locked?.lockVersion).toBe(100n);

    const commit = await onLeader(k1, "commit", (h, context) =>
      h.kvCommit({ context, startVersion: 100n, commitVersion: 110n, keys: [k1, k2] }),
    );
    expect(commit.error).toBeUndefined();
    const got = await onLeader(k2, "get", (h, context) => h.kvGet({ context, key: k2, version: 120n }));
    expect(got.value.toString()).toBe("20");

    const record = new Write(100n, WriteKind.Put).toBytes();
    for (const id of cluster.storeIds) {
      await waitFor(
        async () => {
          const v = await cluster.engine(id)?.get(CF_WRITE, encodeKey(k2, 110n));
          return v?.equals(record);
        },
        { timeoutMs: 5_000, message: `write record of "bob" at 110 applied on store ${id}` },
      );
    }
  });

  it("a follower answers NotLeader in region_error, unchanged", async () => {
    const key = Buffer.from("carol");
    await onLeader(key, "find a leader", (h, context) => h.kvGet({ context, key, version: 1n }));
    const region = cluster.regionFor(key)!;
    const leader = cluster.leaderOf(region.id);
    const follower = cluster.storeIds.find((id) => id !== leader)!;
    const store = cluster.store(follower)!;
    const context = Context.create({
      regionId: region.id,
      regionEpoch: region.regionEpoch,
      peer: store.peerMeta(region.id),
    });
    const res = await new TxnHandlers(new RaftStorage(store)).kvPrewrite({
      context,
      startVersion: 200n,
      primaryLock: key,
      lockTtl: 10n,
      mutations: [{ op: Op.Put, key, value: Buffer.from("1") }],
    });
    expect(res.regionError?.notLeader?.regionId).toBe(region.id);
    expect(res.errors).toEqual([]);
  });
});
