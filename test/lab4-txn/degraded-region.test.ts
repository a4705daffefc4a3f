/**
 * A write is answered only by its outcome. In a degraded region (one follower down, appends to
 * the other dropped while heartbeats pass, so the leader keeps leading but cannot commit), a
 * primary commit stays pending past the server's request timeout. A CheckTxnStatus that comes
 * meanwhile with current_ts past the lock's TTL must not read around the pending commit: had the
 * commit been answered "timed out" and its latches released, the rollback would apply after the
 * commit and leave a commit record pointing at a deleted value (KvGet fails forever).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TxnHandlers } from "../../src/kv/server/index.js";
import { RaftStorage, RegionError } from "../../src/kv/storage/index.js";
import { MessageType } from "../../src/raft/index.js";
import type { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import { Context, Op } from "../../src/proto/kvrpcpb.js";
import { dropWhere } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const ts = (physicalMs: number) => BigInt(physicalMs) << 18n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a degraded region: pending writes keep their latches", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    // A short server-side request timeout: the pending commit outlives it several times over.
    cluster = new TestCluster({ stores: 3, config: { requestTimeoutMs: 300 } });
    await cluster.start();
  });
  afterAll(() => cluster.shutdown());

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

  it("a primary commit pending past the deadline is not rolled back by CheckTxnStatus; the value reads back", async () => {
    const primary = Buffer.from("degraded-primary");
    const startTs = ts(1_000);
    const commitTs = ts(1_001);
    const pre = await onLeader(primary, "prewrite", (h, context) =>
      h.kvPrewrite({
        context,
        startVersion: startTs,
        primaryLock: primary,
        lockTtl: 10n,
        mutations: [{ op: Op.Put, key: primary, value: Buffer.from("v1") }],
      }),
    );
    expect(pre.errors).toEqual([]);

    const region = cluster.regionFor(primary)!;
    const leaderId = await waitFor(() => cluster.leaderOf(region.id), {
      timeoutMs: 5_000,
      message: "region 1 has a leader",
    });
    const [down, starved] = cluster.storeIds.filter((id) => id !== leaderId);
    await cluster.stopStore(down!);
    const removeFilter = cluster.network.addFilter(
      dropWhere(
        (env) => env.from === leaderId && env.to === starved && env.msg.message?.msgType === MessageType.MsgAppend,
      ),
    );

    const store = cluster.store(leaderId)!;
    const handlers = new TxnHandlers(new RaftStorage(store));
    const context = Context.create({
      regionId: region.id,
      regionEpoch: region.regionEpoch,
      peer: store.peerMeta(region.id),
    });
    let commitAnswered = false;
    const commit = handlers
      .kvCommit({ context, startVersion: startTs, commitVersion: commitTs, keys: [primary] })
      .finally(() => (commitAnswered = true));
    await sleep(1_000); // more than three server-side request timeouts
    expect(commitAnswered, "a commit whose entry is in the log but cannot commit must not be answered yet").toBe(false);
    const check = handlers.kvCheckTxnStatus({ context, primaryKey: primary, lockTs: startTs, currentTs: ts(100_000) });
    await sleep(300);

    removeFilter();
    await cluster.startStore(down!);
    const committed = await commit;
    expect(committed.regionError, "the commit was applied").toBeUndefined();
    expect(committed.error).toBeUndefined();
    const status = await check;
    if (!status.regionError)
      expect(status.commitVersion, "CheckTxnStatus ran after the commit and saw it").toBe(commitTs);

    const got = await onLeader(primary, "get the primary", (h, ctx) =>
      h.kvGet({ context: ctx, key: primary, version: ts(200_000) }),
    );
    expect(got.error, "the primary reads back without a key error").toBeUndefined();
    expect(got.value.toString()).toBe("v1");
  });
});
