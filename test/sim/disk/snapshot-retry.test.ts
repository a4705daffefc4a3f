import { describe, expect, it } from "vitest";
import { TEST_RAFTSTORE_CONFIG } from "../../../src/kv/raftstore/index.js";
import { isolate } from "../../../src/kv/transport/filters.js";
import { sleep } from "../../../src/util/runtime.js";
import { TestCluster } from "../../harness/cluster.js";
import { SimClient } from "./storage-client.js";
import { SimRuntime } from "../runner/sim-runtime.js";

/**
 * A leader whose snapshot files cannot be written (a disk fault on plain files) keeps serving and
 * retries the snapshot a lagging follower needs with a backoff, not in a loop; once the disk
 * heals, the follower catches up. Runs on the simulation's clock, so it is exact and replays.
 */

const SEED = 7;
/** How long the fault lasts (simulated ms). */
const FAULT_MS = 3_000;
/** Attempts allowed meanwhile: a backoff from 100 ms doubling gives about five. */
const MAX_ATTEMPTS = 10;

describe("snapshot generation on a failing disk", () => {
  it("retries with a backoff while file writes fail, and the lagging follower catches up after", async () => {
    const runtime = new SimRuntime(SEED);
    const cluster = new TestCluster({
      stores: 3,
      disk: "sim",
      runtime,
      seed: SEED,
      config: { ...TEST_RAFTSTORE_CONFIG, raftLogGcTickMs: 100, raftLogGcCountLimit: 10 },
    });
    const client = new SimClient(cluster, runtime, []);
    let failing = false;
    let attempts = 0;
    for (const id of cluster.storeIds) {
      cluster.simDisk(id)!.faults.failFileWrite = (path) => {
        if (!failing || !path.includes("gen_")) return false;
        attempts++;
        return true;
      };
    }
    const failures: string[] = [];
    let finished = false;
    const scenario = async () => {
      await cluster.start();
      const heal = cluster.network.addFilter(isolate(3n));
      for (let i = 0; i < 40; i++) {
        const op = await client.put(0, `k${i % 4}`, `v${i}`, 4_000);
        if (op.outcome !== "ok") failures.push(`put ${i} while store 3 was isolated: ${op.outcome}`);
      }
      await sleep(runtime, 500); // a log GC tick compacts past store 3's match
      failing = true;
      heal();
      await sleep(runtime, FAULT_MS);
      const attemptsWhileFailing = attempts;
      failing = false;
      if (attemptsWhileFailing === 0) failures.push("no snapshot was attempted: store 3 did not need one");
      if (attemptsWhileFailing > MAX_ATTEMPTS)
        failures.push(
          `${attemptsWhileFailing} snapshot attempts in ${FAULT_MS} simulated ms on a failing disk (at most ${MAX_ATTEMPTS} expected)`,
        );
      const deadline = runtime.elapsedMs + 15_000;
      while ((await cluster.engineGet(3n, "k3"))?.toString() !== "v39") {
        if (runtime.elapsedMs > deadline) {
          failures.push(`store 3 did not catch up within 15 s of the disk healing\n${cluster.dump()}`);
          break;
        }
        await sleep(runtime, 100);
      }
      await cluster.shutdown();
    };
    runtime.schedule("scenario", 0, () => {
      scenario().then(
        () => (finished = true),
        (err: unknown) => {
          failures.push(`scenario threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          finished = true;
        },
      );
    });
    await runtime.runUntil(60_000, () => finished);
    if (runtime.livelock) failures.push(`livelock: ${runtime.livelock} (${attempts} snapshot attempts)`);
    else if (!finished) failures.push(`hung at ${runtime.elapsedMs} simulated ms`);
    expect(failures, `seed ${SEED}`).toEqual([]);
  });
});
