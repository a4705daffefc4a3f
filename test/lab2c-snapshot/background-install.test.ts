/**
 * Installing a big snapshot is region-sized work: it runs off the store loop, so the other
 * regions of the store keep their heartbeats. Here store 3 leads region 1 while it installs a
 * ~20 MiB snapshot of region 2; region 1 must keep its leader and term throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { Modify, RaftStorage } from "../../src/kv/storage/index.js";
import { rawKeyspace } from "../../src/kv/storage/index.js";
import { dropWhere } from "../../src/kv/transport/index.js";
import { TestCluster } from "../harness/cluster.js";
import { transferLeader } from "../harness/generic.js";
import { waitFor } from "../harness/wait.js";

const KEYS = 60_000;
const BATCH = 2_000;
const VALUE = Buffer.alloc(300, 0x61);

describe("snapshot install off the store loop", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = new TestCluster({ stores: 3, config: { raftLogGcCountLimit: 10 } });
    await cluster.start();
  });
  afterAll(() => cluster.shutdown());

  it("a store installing a big snapshot keeps leading its other region without a leader change", async () => {
    await cluster.put("a", "1");
    const leader1 = await waitFor(() => cluster.leaderOf(1n), { timeoutMs: 5_000, message: "region 1 has a leader" });
    const region = cluster.store(leader1)!.peers.get(1n)!.region;
    const split = await cluster.store(leader1)!.proposeSplit(
      1n,
      region.regionEpoch!,
      Buffer.from("m"),
      2n,
      region.peers.map((p) => 100n + p.storeId),
    );
    expect(split.header?.error).toBeUndefined();
    await cluster.put("n", "1"); // region 2 serves
    await transferLeader(cluster, 1n, 3n);

    // Store 3 misses region 2's writes; its log is compacted past them, so it will need a snapshot.
    const removeFilter = cluster.network.addFilter(dropWhere((env) => env.to === 3n && env.msg.regionId === 2n));
    for (let start = 0; start < KEYS; start += BATCH) {
      const batch: Modify[] = Array.from({ length: BATCH }, (_, i) => ({
        kind: "put" as const,
        cf: CF_DEFAULT,
        key: Buffer.from(`n${String(start + i).padStart(8, "0")}`),
        value: VALUE,
      }));
      await cluster.onLeader(Buffer.from("n"), "bulk put", (s: RaftStorage, ctx) => rawKeyspace(s).write(ctx, batch));
    }
    const leader2 = cluster.leaderOf(2n)!;
    await waitFor(() => cluster.store(leader2)!.peers.get(2n)!.storage.truncatedIndex > 10n, {
      timeoutMs: 10_000,
      message: "region 2's log was compacted",
    });

    const peer1 = cluster.store(3n)!.peers.get(1n)!;
    const term = peer1.term;
    let changes = 0;
    const seen = { sending: 0, incoming: 0, applying: 0 };
    const watch = setInterval(() => {
      if (!peer1.isLeader() || peer1.term !== term) changes++;
      const here = cluster.store(3n)!.snapshotCounts();
      const there = cluster.store(leader2)?.snapshotCounts();
      seen.sending = Math.max(seen.sending, there?.sending ?? 0);
      seen.incoming = Math.max(seen.incoming, here.receiving);
      seen.applying = Math.max(seen.applying, here.applying);
    }, 5);
    try {
      removeFilter();
      const last = `n${String(KEYS - 1).padStart(8, "0")}`;
      await waitFor(async () => (await cluster.engineGet(3n, last)) !== undefined, {
        timeoutMs: 30_000,
        message: "store 3 installed region 2's snapshot",
      });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(watch);
    }
    expect(changes, `region 1 on store 3 lost its leadership during the install\n${cluster.dump()}`).toBe(0);
    // What the store heartbeats report to the scheduler (its snapshot limits read these).
    expect(
      Math.min(seen.sending, seen.incoming, seen.applying),
      `the sender, receiver and installer each counted the snapshot: ${JSON.stringify(seen)}`,
    ).toBeGreaterThanOrEqual(1);
  });
});
