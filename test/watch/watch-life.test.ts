// the life of a KvClient.watch around its start and the client's close(), against
// a fake one-region scheduler and an in-process ChangeData service whose feeds stay open and
// silent. No cluster.
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/index.js";
import type { ChangeDataEvent, ChangeDataRequest } from "../../src/proto/cdcpb.js";
import { ChangeDataService } from "../../src/proto/cdcpb.js";
import type { Region } from "../../src/proto/metapb.js";
import type { Runtime, TimerHandle } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { waitFor } from "../harness/wait.js";
import { oneRegionScheduler } from "../lab3b-multiraft/fake-scheduler.js";

const REGION: Region = {
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 11n, storeId: 1n }],
};

/** A ChangeData service whose feeds stay open and send nothing; it counts them and their cancels. */
async function silentFeeds() {
  const feeds = { opened: 0, cancelled: 0 };
  const server = new grpc.Server();
  server.addService(ChangeDataService, {
    eventFeed: (call: grpc.ServerWritableStream<ChangeDataRequest, ChangeDataEvent>) => {
      feeds.opened++;
      call.on("cancelled", () => feeds.cancelled++);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { feeds, addr: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

/** The real runtime, counting the intervals set and not cleared. */
function countingRuntime(): Runtime & { liveIntervals: Set<TimerHandle> } {
  const liveIntervals = new Set<TimerHandle>();
  return {
    ...realRuntime,
    liveIntervals,
    setInterval: (fn, ms) => {
      const h = realRuntime.setInterval(fn, ms);
      liveIntervals.add(h);
      return h;
    },
    clearInterval: (h) => {
      if (h) liveIntervals.delete(h);
      realRuntime.clearInterval(h);
    },
  };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const within = <T>(p: Promise<T>, ms: number): Promise<T | "still pending"> =>
  Promise.race([p, new Promise<"still pending">((r) => setTimeout(() => r("still pending"), ms))]);

describe("watch life", () => {
  it("a watch whose first next() failed on the TSO does not hang its next next()", async () => {
    const scheduler = oneRegionScheduler(REGION, () => "127.0.0.1:1");
    const tso = scheduler.tso;
    let calls = 0;
    scheduler.tso = () => (++calls === 1 ? Promise.reject(new Error("scheduler restarting")) : tso());
    const client = KvClient.withScheduler(scheduler, { timeoutMs: 2000 });
    cleanups.push(() => client.close());
    const watch = client.watch("p/");
    cleanups.push(() => watch.stop());
    await expect(watch.next()).rejects.toThrow("scheduler restarting");
    const second = await within(
      watch.next().then(
        (r) => (r.done ? "done" : "an event"),
        (e: unknown) => `rejected: ${String(e)}`,
      ),
      1000,
    );
    expect(second, "the second next() waits forever: the watch is 'started' with no feed").not.toBe("still pending");
  });

  it("a watch stopped while its start waits for the TSO leaves no timer running", async () => {
    const scheduler = oneRegionScheduler(REGION, () => "127.0.0.1:1");
    const tso = scheduler.tso;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    scheduler.tso = async () => {
      await gate;
      return tso();
    };
    const runtime = countingRuntime();
    const client = KvClient.withScheduler(scheduler, { timeoutMs: 2000, runtime });
    cleanups.push(() => client.close());
    const watch = client.watch("p/");
    const first = watch.next();
    watch.stop(); // e.g. the consumer gave up waiting for the first event
    release();
    expect(await first).toEqual({ value: undefined, done: true });
    // The stall check (every second, reading the range to resolve locks) outlives the watch.
    const leaked = runtime.liveIntervals.size;
    for (const h of runtime.liveIntervals) realRuntime.clearInterval(h);
    expect(leaked, "intervals left running by a stopped watch").toBe(0);
  });

  it("close() ends the client's open watches: next() returns and the feeds are cancelled", async () => {
    const store = await silentFeeds();
    cleanups.push(store.stop);
    const client = KvClient.withScheduler(
      oneRegionScheduler(REGION, () => store.addr),
      { timeoutMs: 3000 },
    );
    const watch = client.watch("p/");
    cleanups.push(() => watch.stop());
    const next = watch.next().then(
      (r) => (r.done ? "done" : "an event"),
      (e: unknown) => `rejected: ${String(e)}`,
    );
    await waitFor(() => store.feeds.opened === 1, { timeoutMs: 5000, message: "the watch to open its feed" });
    client.close();
    const outcome = await within(next, 1500);
    expect(outcome, "after close() the watch's next() never returns").not.toBe("still pending");
    await waitFor(() => store.feeds.cancelled === 1, {
      timeoutMs: 2000,
      message: "the watch's feed to be cancelled by close() (it stays open)",
    });
  });

  it("stop() ends every pending next(), not only the last one asked", async () => {
    const store = await silentFeeds();
    cleanups.push(store.stop);
    const client = KvClient.withScheduler(
      oneRegionScheduler(REGION, () => store.addr),
      { timeoutMs: 3000 },
    );
    cleanups.push(() => client.close());
    const watch = client.watch("p/");
    const first = watch.next();
    await waitFor(() => store.feeds.opened === 1, { timeoutMs: 5000, message: "the watch to open its feed" });
    const second = watch.next(); // e.g. a consumer's Promise.race with a timeout, asked again
    watch.stop();
    const outcomes = await Promise.all([within(first, 1000), within(second, 1000)]);
    expect(outcomes, "the first next() is never woken: the queue keeps one waiter").toEqual([
      { value: undefined, done: true },
      { value: undefined, done: true },
    ]);
  });
});
