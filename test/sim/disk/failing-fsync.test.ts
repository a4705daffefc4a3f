import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../harness/cluster.js";
import { waitFor } from "../../harness/wait.js";

/**
 * A store whose disk starts failing fsyncs must stop, as it does on a real disk error: a write
 * that may not be durable must not be acknowledged, and nothing may be written after it as if
 * it were. The others keep serving; once the disk is good again the store restarts from what
 * it kept and catches up.
 */
describe("a store whose fsyncs fail", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it("stops serving, the others serve on, and after a restart it catches up with no acknowledged write lost", async () => {
    const fatal: Array<{ id: bigint; err: unknown }> = [];
    const c = (cluster = new TestCluster({
      stores: 3,
      disk: "sim",
      seed: 1,
      onStoreFatal: (id, err) => fatal.push({ id, err }),
    }));
    await c.start();
    await c.put("before", "1");
    const leader = await waitFor(() => c.leaderOf(1n), { timeoutMs: 10_000, message: "region 1 elects a leader" });
    const disk = c.simDisk(leader)!;
    disk.faults.failSync = () => true;

    const failed = c.slots.get(leader)!.store!;
    await c.put("during", "2");
    await waitFor(() => failed.stopped, { timeoutMs: 10_000, message: `store ${leader} stops after its fsync failed` });
    expect(disk.filesWithFailedSync().length, "a sync was attempted and failed").toBeGreaterThan(0);
    // Whoever runs the store hears of it (tinykv-server exits), not only the store's own log.
    await waitFor(() => fatal.length > 0, {
      timeoutMs: 10_000,
      message: `store ${leader}'s runner is told it stopped on a disk error`,
    });
    expect(fatal.map((f) => f.id)).toEqual([leader]);
    expect(String(fatal[0]!.err)).toMatch(/sync/i);
    const outcome = await failed.read({ regionId: 1n, peer: failed.peerMeta(1n), regionEpoch: undefined, term: 0n });
    expect("error" in outcome && outcome.error.message, "the stopped store refuses a read").toMatch(/not serving/);

    disk.faults.failSync = undefined;
    await c.stopStore(leader);
    await c.startStore(leader);
    await c.put("after", "3");
    for (const [key, value] of [
      ["before", "1"],
      ["during", "2"],
      ["after", "3"],
    ] as const) {
      expect((await c.get(key))?.toString(), `cluster read of ${key}`).toBe(value);
      await waitFor(async () => (await c.engineGet(leader, key))?.toString() === value, {
        timeoutMs: 10_000,
        message: `restarted store ${leader} applies ${key}=${value}`,
      });
    }
  }, 60_000);
});
