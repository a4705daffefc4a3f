/**
 * A peer that applied its own removal destroys itself with its data. If the store crashes after
 * the removal is durable and before the destroy's batch is, the restarted store finds a region
 * state that no longer lists it: it must still finish the destroy (clear the range, delete the
 * raft state and log, write the tombstone), not leave the region's data on its disk forever.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConfChangeType } from "../../src/raft/eraftpb.js";
import { PeerState, RegionLocalState } from "../../src/proto/raft_serverpb.js";
import { regionStateKey } from "../../src/kv/raftstore/keys.js";
import { TestCluster } from "../harness/cluster.js";
import { changePeer } from "../harness/generic.js";
import { seededRng } from "../harness/rng.js";
import { waitFor } from "../harness/wait.js";

describe("a removal interrupted by a crash", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("the restarted store clears the removed peer's data", async () => {
    const c = (cluster = new TestCluster({ stores: 3, disk: "sim" }));
    await c.start();
    await c.put("k", "v");
    await waitFor(async () => (await c.engineGet(3n, "k"))?.toString() === "v", {
      timeoutMs: 10_000,
      message: "store 3 has k",
    });
    const store3 = c.store(3n)!;
    // Hold store 3's destroy in its data-clearing step, then cut the power there.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let clearing = false;
    const worker = store3.worker as unknown as { clearRange: (...args: unknown[]) => Promise<void> };
    const clearRange = worker.clearRange.bind(worker);
    worker.clearRange = async (...args: unknown[]) => {
      clearing = true;
      await gate;
      return clearRange(...args);
    };
    const removal = changePeer(c, 1n, ConfChangeType.RemoveNode, { id: 3n, storeId: 3n });
    await waitFor(() => clearing, { timeoutMs: 10_000, message: "store 3 started destroying its peer" });
    const lost = c.powerLoss(3n, seededRng(7));
    setTimeout(release, 20); // the destroy goes on against the crashed engines, and fails
    await lost;
    await removal;
    await c.startStore(3n);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(c.store(3n)!.peers.has(1n)).toBe(false);
    expect(await c.engineGet(3n, "k"), "the removed peer's data is still on store 3").toBeUndefined();
    const state = await c.engine(3n)!.getMeta(regionStateKey(1n));
    expect(
      state && RegionLocalState.decode(state).state,
      "region 1's state on store 3 is a tombstone after the restart",
    ).toBe(PeerState.Tombstone);
  });
});
