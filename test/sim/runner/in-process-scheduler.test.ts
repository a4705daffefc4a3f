// The in-process scheduler the simulation uses: the real core behind a simulated link, with
// its metadata on a simulated disk. A crash makes every call UNAVAILABLE; a restart reopens the
// core from what the disk kept, and the cluster id, ids and timestamps carry on from there.
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { SimDisk } from "../../../src/kv/engine/index.js";
import { Store } from "../../../src/proto/metapb.js";
import { SchedulerRpcError } from "../../../src/scheduler/client/client.js";
import { InProcessScheduler, InProcessSchedulerClient } from "../../../src/scheduler/server/in-process.js";
import { DeadlineExceededError } from "../../../src/util/retry.js";
import { realRuntime } from "../../../src/util/runtime.js";
import { EngineMetaKV } from "./engine-meta-kv.js";

function scheduler() {
  const disk = new SimDisk({ name: "scheduler" });
  const host = new InProcessScheduler({
    runtime: realRuntime,
    latencyMs: () => 0,
    openKv: async () => new EngineMetaKV(await disk.open("meta")),
  });
  return { disk, host };
}

describe("in-process scheduler", () => {
  it("is UNAVAILABLE while crashed, and restarts from its meta storage with the same cluster id, fresh ids and later timestamps", async () => {
    const { disk, host } = scheduler();
    await host.start();
    const client = host.connect("test", { retryDeadlineMs: 50 });
    await client.bootstrap(Store.create({ id: 1n, address: "store1" }));
    const clusterId = client.clusterId;
    const id = await client.allocId();
    const ts = await client.tso();

    await host.crash(() => disk.crash());
    // Retried like the gRPC client's UNAVAILABLE, until the retry deadline.
    const err = await client.allocId().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    const last = (err as DeadlineExceededError).lastError;
    expect(last).toBeInstanceOf(SchedulerRpcError);
    expect((last as SchedulerRpcError).code).toBe(status.UNAVAILABLE);
    expect(
      client.regionHeartbeat({ region: undefined, leader: undefined, pendingPeers: [], approximateSize: 0n }),
      "a heartbeat to a dead scheduler is not sent",
    ).toBe(false);

    await host.start();
    expect(host.core!.clusterId).toBe(clusterId);
    expect(await client.isBootstrapped()).toBe(true);
    expect(await client.allocId()).toBeGreaterThan(id);
    expect(await client.tso()).toBeGreaterThan(ts);
    client.close();
    await host.stop();
  });

  it("answers header errors as the gRPC service does (SchedulerError), and a wrong cluster id as FAILED_PRECONDITION", async () => {
    const { host } = scheduler();
    await host.start();
    const client = host.connect("test", { retryDeadlineMs: 50 });
    await expect(client.getStore(1n)).rejects.toThrow(/not bootstrapped/i);
    const stranger = new InProcessSchedulerClient(host, client.clusterId + 1n, "stranger", 50);
    const err = await stranger.allocId().catch((e: unknown) => e);
    expect((err as SchedulerRpcError).code).toBe(status.FAILED_PRECONDITION);
    client.close();
    await host.stop();
  });
});
