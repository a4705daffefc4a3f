// reviewclient: the life of a KvClient.watch around its start and the client's close(), against
// a fake one-region scheduler and an in-process ChangeData service whose feeds stay open and
// silent. No cluster.
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/index.js";
import type { Region } from "../../src/proto/metapb.js";
import type { Runtime, TimerHandle } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { oneRegionScheduler } from "../lab3b-multiraft/fake-scheduler.js";

const REGION: Region = {
  id: 1n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 11n, storeId: 1n }],
};

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

describe("reviewclient: watch life", () => {
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
});
