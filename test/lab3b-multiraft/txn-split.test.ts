import { afterEach, describe, expect, it } from "vitest";
import { TxnHandlers } from "../../src/kv/server/index.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

/** Percolator data (raw-keyed locks, encoded data keys) stays routable by user key across splits. */
describe("lab3b transactions across region splits", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("every committed key is readable from the region its user key routes to after splits", async () => {
    cluster = new TestCluster({ stores: 3, config: { regionMaxSize: 2000, regionSplitSize: 1200 } });
    await cluster.start();
    const c = cluster;
    let ts = 100n;
    // 12-byte keys sharing their first 8 bytes: their encoded forms sort unlike the raw keys
    // (EncodeBytes puts 0xFF after byte 8), the case that puts data on the wrong side of a split.
    const keyOf = (i: number) => Buffer.from(`key_${String(i).padStart(8, "0")}`);
    const region = async (
      key: Buffer,
      what: string,
      op: (
        h: TxnHandlers,
        ctx: Parameters<TxnHandlers["kvGet"]>[0]["context"],
      ) => Promise<{ regionError?: { message: string } }>,
    ) =>
      c.onLeader(key, what, async (storage, ctx) => {
        const res = await op(new TxnHandlers(storage), ctx);
        if (res.regionError)
          throw new (await import("../../src/kv/storage/index.js")).RegionError(res.regionError as never);
        return res;
      });
    for (let i = 0; i < 120; i++) {
      const key = keyOf(i);
      const start = (ts += 10n);
      const value = Buffer.from(`value-${i}-${"v".repeat(40)}`);
      const pw = (await region(key, `prewrite ${key}`, (h, ctx) =>
        h.kvPrewrite({
          context: ctx,
          mutations: [{ op: Op.Put, key, value }],
          primaryLock: key,
          startVersion: start,
          lockTtl: 3000n,
        }),
      )) as { errors: unknown[] };
      expect(pw.errors).toEqual([]);
      const cm = (await region(key, `commit ${key}`, (h, ctx) =>
        h.kvCommit({ context: ctx, startVersion: start, keys: [key], commitVersion: start + 5n }),
      )) as { error?: unknown };
      expect(cm.error).toBeUndefined();
    }
    await waitFor(() => c.store(1n)!.regions().length >= 3, {
      timeoutMs: 10_000,
      message: "the transactional data never split into 3+ regions",
    });
    const readTs = (ts += 100n);
    for (let i = 0; i < 120; i++) {
      const key = keyOf(i);
      const got = (await region(key, `get ${key}`, (h, ctx) => h.kvGet({ context: ctx, key, version: readTs }))) as {
        value: Buffer;
        notFound: boolean;
        error?: unknown;
      };
      expect(got.error, `KvGet ${key}`).toBeUndefined();
      expect(got.notFound, `KvGet ${key} found nothing`).toBe(false);
      expect(got.value.toString()).toBe(`value-${i}-${"v".repeat(40)}`);
    }
  });
});
