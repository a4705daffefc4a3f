import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

const MiB = 1024 * 1024;

/**
 * A command over raftEntryMaxSize is refused before it is proposed, over real gRPC between
 * real store processes: the client gets INVALID_ARGUMENT naming the region and the sizes, nothing
 * is written, and the region keeps its leader (no stream between the stores broke).
 */
describe("lab2b raft entry size limit (real binaries)", () => {
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, raftEntryMaxSize: 2 * MiB });
  afterAll(() => cluster.shutdown());

  it("an oversized prewrite and raw put are refused with a clear error; the leader stays and serves", async () => {
    await cluster.startScheduler();
    for (const n of [1, 2, 3]) await cluster.addStore(n);
    await cluster.put("warm-up", "1");
    const before = await cluster.client!.getRegion(Buffer.from("big-0"));
    const leaderBefore = before!.leader!.id;
    const { store } = await cluster.client!.getStore(before!.leader!.storeId);
    const rpc = new TinyKvRpc(store.address, 10_000);
    try {
      const ctx = {
        regionId: before!.region.id,
        regionEpoch: before!.region.regionEpoch,
        peer: before!.leader,
        term: 0n,
      };
      const value = Buffer.alloc(512 * 1024, 7);
      const mutations = Array.from({ length: 6 }, (_, i) => ({ op: Op.Put, key: Buffer.from(`big-${i}`), value }));
      const err = await rpc
        .kvPrewrite({ context: ctx, mutations, primaryLock: Buffer.from("big-0"), startVersion: 100n, lockTtl: 3000n })
        .then(
          () => undefined,
          (e: ServiceError) => e,
        );
      expect(err, "a 3 MiB prewrite over a 2 MiB entry limit must be refused").toBeDefined();
      expect(err!.code).toBe(status.INVALID_ARGUMENT);
      expect(err!.details).toMatch(
        new RegExp(
          `region ${ctx.regionId}: the raft command is \\d+ bytes, over the raft entry limit of ${2 * MiB} bytes`,
        ),
      );

      const put = await rpc.rawPut({ context: ctx, key: Buffer.from("big-raw"), value: Buffer.alloc(3 * MiB) });
      expect(put.error).toMatch(/over the raft entry limit/);
      expect((await rpc.rawGet({ context: ctx, key: Buffer.from("big-raw") })).notFound).toBe(true);
      const get = await rpc.kvGet({ context: ctx, key: Buffer.from("big-0"), version: 200n });
      expect(get.error, "nothing of the refused prewrite may be written (no lock)").toBeUndefined();
      expect(get.notFound).toBe(true);

      // Just under the limit still works, and the region never changed leader.
      const ok = await rpc.rawPut({ context: ctx, key: Buffer.from("fits"), value: Buffer.alloc(MiB + 512 * 1024, 1) });
      expect(ok.error).toBe("");
      expect(ok.regionError).toBeUndefined();
      expect(await cluster.get("warm-up")).toBe("1");
      const after = await waitFor(() => cluster.client!.getRegion(Buffer.from("big-0")), {
        timeoutMs: 5000,
        message: "region lookup",
      });
      expect(after.leader?.id, `leader changed\n${cluster.logs()}`).toBe(leaderBefore);
    } finally {
      rpc.close();
    }
  }, 60_000);
});
