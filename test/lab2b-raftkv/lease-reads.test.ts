// Lease reads in a cluster: a leader cut off from the others keeps answering reads from its own
// state only while no other leader can exist, i.e. it stops before the majority elects one.
import { afterEach, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { rawKeyspace } from "../../src/kv/storage/index.js";
import { isolate } from "../../src/kv/transport/index.js";
import { readOn } from "./read-on.js";
import { TestCluster } from "../harness/cluster.js";
import { waitFor } from "../harness/wait.js";

describe("lab2b raft kv: lease reads", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("an isolated leader serves lease reads only until before the others can elect a new leader", async () => {
    // A long election timeout (1 s at 20 ms ticks) makes the lease long enough that reads right
    // after the cut are served by it even on a loaded machine.
    const c = new TestCluster({ stores: 3, config: { raftElectionTicks: 50 } });
    cluster = c;
    await c.start();
    await c.put("k", "v1");
    const old = await waitFor(() => c.leaderOf(1n), { timeoutMs: 10_000, message: "region 1 never elected a leader" });
    expect(await readOn(c, old, "k"), "the leader reads what was written").toBe("v1");

    c.network.addFilter(isolate(old));
    const cutAt = performance.now();
    let servedAfterCut = 0;
    let lastServedAt = 0;
    let reading = true;
    const reads = (async () => {
      while (reading) {
        const value = await readOn(c, old, "k");
        if (value !== undefined) {
          expect(value, "an isolated leader's read returns the last acknowledged write").toBe("v1");
          servedAfterCut++;
          lastServedAt = performance.now();
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    const others = c.storeIds.filter((id) => id !== old);
    const isNewLeader = () => others.find((id) => c.store(id)?.peers.get(1n)?.isLeader());
    const fresh = await waitFor(isNewLeader, { timeoutMs: 15_000, message: "the majority never elected a new leader" });
    const electedSeenAt = performance.now();
    await c.onLeader(Buffer.from("k"), "put k on the new leader", (s, ctx) =>
      rawKeyspace(s).write(ctx, [{ kind: "put", cf: CF_DEFAULT, key: Buffer.from("k"), value: Buffer.from("v2") }]),
    );
    // A read on the old leader after the new one acknowledged a write must not return the old value.
    const afterWrite = await readOn(c, old, "k");
    reading = false;
    await reads;

    expect(afterWrite, "the old leader serves nothing once another leader wrote").toBeUndefined();
    expect(servedAfterCut, "the isolated leader served reads by its lease right after the cut").toBeGreaterThan(0);
    expect(
      lastServedAt,
      `store ${old} served a read at ${(lastServedAt - cutAt).toFixed(0)} ms after the cut, but store ${fresh} led by ${(electedSeenAt - cutAt).toFixed(0)} ms`,
    ).toBeLessThan(electedSeenAt);
  });
});
