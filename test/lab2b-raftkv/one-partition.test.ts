// TinyKV's TestOnePartition2B (kv/test_raftstore/test_test.go): requests in the minority of a
// partition do not go through (but a read on the old leader inside its lease, with the value
// acknowledged before the cut); the majority elects a new leader and moves on; once the partition
// heals, the old leader converges to what the majority wrote.
import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { RawKeyspace } from "../../src/kv/storage/index.js";
import { RaftStorage, rawKeyspace, RegionError } from "../../src/kv/storage/index.js";
import { partition } from "../../src/kv/transport/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

const ANSWER_DEADLINE_MS = 15_000;

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

class NoAnswerError extends Error {}

/** A request to one store's peer of region 1, as a client that picked that store would send it. */
function onStore(c: TestCluster, storeId: bigint): { storage: RawKeyspace; ctx: Context } {
  const store = c.store(storeId)!;
  const region = store.peers.get(1n)!.region;
  const ctx: Context = { regionId: 1n, regionEpoch: region.regionEpoch, peer: store.peerMeta(1n), term: 0n };
  return { storage: rawKeyspace(new RaftStorage(store)), ctx };
}

/** How a request ended: its value or its error. A request still unanswered at the deadline fails the test. */
async function outcome<T>(p: Promise<T>, what: string): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const fail = () => reject(new NoAnswerError(`${what}: no answer within ${ANSWER_DEADLINE_MS} ms`));
    timer = setTimeout(fail, ANSWER_DEADLINE_MS);
  });
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value })), deadline]);
  } catch (error) {
    if (error instanceof NoAnswerError) throw error;
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

const describeOutcome = (o: Outcome<unknown>): string => (o.ok ? `ok, value ${String(o.value)}` : String(o.error));

describe("lab2b raft kv: partitions", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("TestOnePartition2B: the old leader's minority serves nothing, the majority moves on, the minority converges", async () => {
    const c = (cluster = new TestCluster({ stores: 5 }));
    await c.start();
    const leader = await waitFor(() => c.leaderOf(1n), {
      timeoutMs: 10_000,
      message: "region 1 never elected a leader",
    });
    const others = c.storeIds.filter((id) => id !== leader);
    let s1 = [leader, others[0]!, others[1]!];
    let s2 = [others[2]!, others[3]!];

    // The leader is in the majority: the partition does not affect writes or reads.
    c.network.addFilter(partition(s1, s2));
    await c.put("k1", "v1");
    expect((await c.get("k1"))?.toString()).toBe("v1");
    for (const id of s2) expect(await c.engineGet(id, "k1"), `store ${id} is in the minority`).toBeUndefined();
    c.network.clearFilters();

    // The old leader is in the minority (2 of 5): a write to it and reads on both minority stores.
    s2 = [...s2, s1[2]!];
    s1 = s1.slice(0, 2);
    c.network.addFilter(partition(s1, s2));
    const oldLeader = onStore(c, leader);
    const minorityPut = outcome(
      oldLeader.storage.write(oldLeader.ctx, [
        { kind: "put", cf: CF_DEFAULT, key: Buffer.from("k1"), value: Buffer.from("minority") },
      ]),
      `put k1 on the old leader (store ${leader})`,
    );
    const minorityReads = s1.map((id) => {
      const { storage, ctx } = onStore(c, id);
      const read = storage.reader(ctx).then(async (reader) => {
        try {
          return (await reader.getCF(CF_DEFAULT, Buffer.from("k1")))?.toString();
        } finally {
          await reader.close();
        }
      });
      return outcome(read, `get k1 on minority store ${id}`);
    });

    expect((await c.get("k1"))?.toString(), "the majority reads what was committed").toBe("v1");
    await c.put("k1", "changed");
    for (const id of s1) {
      expect((await c.engineGet(id, "k1"))?.toString(), `minority store ${id} keeps the old value`).toBe("v1");
    }

    // Check-quorum makes the old leader step down within an election timeout, so the minority's
    // requests are answered while the partition lasts: the write with StaleCommand, reads NotLeader.
    const put = await minorityPut;
    expect(put.ok, `a write on the old leader in the minority must not succeed (${describeOutcome(put)})`).toBe(false);
    if (!put.ok) expect(put.error, "a region error a client can act on").toBeInstanceOf(RegionError);
    for (const [i, read] of (await Promise.all(minorityReads)).entries()) {
      if (s1[i] === leader && read.ok) {
        // Sent before the majority could elect anyone, it may be served by the old leader's lease:
        // then with what was acknowledged before the cut, never with the majority's later write.
        expect(read.value, `the old leader's lease read (${describeOutcome(read)})`).toBe("v1");
        continue;
      }
      expect(read.ok, `a read on minority store ${s1[i]} must not succeed (${describeOutcome(read)})`).toBe(false);
      if (!read.ok) expect(read.error, "a region error a client can act on").toBeInstanceOf(RegionError);
    }

    // Healed: the old leader syncs what the majority wrote, and its own write never applied.
    c.network.clearFilters();
    await c.put("k2", "v2");
    await waitFor(async () => (await c.engineGet(leader, "k2"))?.toString() === "v2", {
      timeoutMs: 10_000,
      get message() {
        return `the old leader (store ${leader}) never caught up with k2\n${c.dump()}`;
      },
    });
    expect((await c.engineGet(leader, "k1"))?.toString(), "the old leader has the majority's k1").toBe("changed");
    for (const id of c.storeIds) {
      await waitFor(async () => (await c.engineGet(id, "k2"))?.toString() === "v2", {
        timeoutMs: 10_000,
        message: `store ${id} never got k2`,
      });
      expect((await c.engineGet(id, "k1"))?.toString(), `store ${id}`).toBe("changed");
    }
  });
});
