import { afterAll, describe, expect, it } from "vitest";
import { KvClient, KvOutcomeUnknownError } from "../../src/client/index.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

/**
 * The product as users run it: tinyscheduler + tinykv-server processes over real gRPC. Data
 * grows until regions split, a 4th store joins and receives regions, a store is killed and the
 * cluster keeps serving reads and writes.
 */
/**
 * Puts until one attempt's outcome is known. A put that meets a leader change may end
 * KvOutcomeUnknownError (StaleCommand), which is right, and putting the same value again is
 * harmless; this test is about splits and rebalancing, not about that.
 */
async function putKnown(kv: KvClient, key: string, value: string, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await kv.put(key, value);
    } catch (err) {
      if (!(err instanceof KvOutcomeUnknownError) || Date.now() > until)
        throw new Error(`put ${key}: attempt ${attempt} failed, no known outcome within ${deadlineMs} ms`, {
          cause: err,
        });
      await new Promise((r) => setTimeout(r, Math.min(50 * attempt, 500)));
    }
  }
}

describe("lab3b end to end with real binaries", () => {
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, regionMaxSize: 24 * 1024, regionSplitSize: 16 * 1024 });
  let kv: KvClient | undefined;
  afterAll(async () => {
    kv?.close();
    await cluster.shutdown();
  });

  it("splits, rebalances onto a new store, and survives a store failure", async () => {
    await cluster.startScheduler();
    for (const n of [1, 2, 3]) await cluster.addStore(n);
    kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 30_000 });
    const value = (i: number) => `value-${i}-${"x".repeat(200)}`;
    const N = 1500;
    for (let base = 0; base < N; base += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          putKnown(kv!, `key-${String(base + j).padStart(6, "0")}`, value(base + j)),
        ),
      );
    }
    const regions = await waitFor(
      async () => {
        const rs = await kv!.getAllRegions();
        return rs.length >= 4 ? rs : undefined;
      },
      {
        timeoutMs: 30_000,
        get message() {
          return `the data never split into 4+ regions\n${cluster.logs()}`;
        },
      },
    );
    expect(regions.length).toBeGreaterThanOrEqual(4);

    await cluster.addStore(4);
    const store4 = await waitFor(() => cluster.storeIdOf(4), {
      timeoutMs: 20_000,
      message: "store 4 never registered with the scheduler",
    });
    await waitFor(
      async () => {
        const rs = await kv!.getAllRegions();
        return rs.some((r) => r.region.peers.some((p) => p.storeId === store4));
      },
      {
        timeoutMs: 60_000,
        get message() {
          return `no region ever moved to the new store ${store4}\n${cluster.logs()}`;
        },
      },
    );

    await cluster.kill(2, "SIGKILL");
    for (let i = 0; i < N; i += 97)
      expect((await kv.get(`key-${String(i).padStart(6, "0")}`))?.toString()).toBe(value(i));
    await putKnown(kv, "after-kill", "still-writable");
    expect((await kv.get("after-kill"))?.toString()).toBe("still-writable");
    const scanned = await kv.scan("key-", "key-~", N + 10);
    expect(scanned.length).toBe(N);
  });
});
