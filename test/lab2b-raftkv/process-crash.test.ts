import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { CF_DEFAULT, Engine } from "../../src/kv/engine/index.js";
import { rawCf } from "../../src/kv/storage/index.js";
import { ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";

/**
 * Stores as real processes talking gRPC on loopback: one is SIGKILLed mid-load and restarted;
 * nothing acknowledged is lost and it catches up.
 */
describe("lab2b raft kv as processes", () => {
  const cluster = new ProcessCluster();
  afterAll(() => cluster.shutdown());

  it("survives SIGKILL of a store under load and the store rejoins", async () => {
    await cluster.startScheduler();
    for (const n of [1, 2, 3]) await cluster.addStore(n);
    // The region gets three replicas from the scheduler's replica checker.
    await waitFor(async () => (await cluster.client!.getRegion(Buffer.from("")))?.region.peers.length === 3, {
      timeoutMs: 30_000,
      get message() {
        return `the first region never got 3 replicas\n${cluster.logs()}`;
      },
    });
    const acked: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        for (let i = 0; !stop; i++) {
          const key = `w${w}-${String(i).padStart(5, "0")}`;
          await cluster.put(key, `value-${key}`);
          acked.push(key);
        }
      })(),
    );
    await waitFor(() => acked.length >= 100, {
      timeoutMs: 20_000,
      message: "writers made no progress before the kill",
    });
    await cluster.kill(2, "SIGKILL");
    const before = acked.length;
    await waitFor(() => acked.length >= before + 100, {
      timeoutMs: 20_000,
      message: "writes stalled after killing one of three stores",
    });
    cluster.startStore(2);
    await waitFor(() => acked.length >= before + 200, {
      timeoutMs: 20_000,
      message: "writes stalled after the restart",
    });
    stop = true;
    await Promise.all(writers);
    for (const key of acked) expect(await cluster.get(key), `acknowledged ${key} lost`).toBe(`value-${key}`);

    // The restarted store caught up (by log or snapshot): once stopped, its own LevelDB holds every
    // acknowledged write (in the raw API's CF).
    const last = acked[acked.length - 1]!;
    const path = join(cluster.stores.get(2)!.path, "kv");
    await waitFor(
      async () => {
        await cluster.kill(2, "SIGTERM");
        const engine = await Engine.open(path);
        try {
          return (await engine.get(rawCf(CF_DEFAULT), Buffer.from(last)))?.toString() === `value-${last}`;
        } finally {
          await engine.close();
          cluster.startStore(2);
        }
      },
      { timeoutMs: 20_000, intervalMs: 1000, message: `the restarted store never applied ${last}` },
    );
    await cluster.kill(2, "SIGTERM");
    const engine = await Engine.open(path);
    try {
      for (const key of acked)
        expect((await engine.get(rawCf(CF_DEFAULT), Buffer.from(key)))?.toString(), `store 2 lacks ${key}`).toBe(
          `value-${key}`,
        );
    } finally {
      await engine.close();
    }
  });
});
