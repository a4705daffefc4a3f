// The raw watch (KvClient.watchRaw, cdcpb kv_api = RawKV) against three stores over real gRPC:
// puts (with and without a ttl), deletes, a CAS that swaps and one that does not, a DeleteRange,
// each seen once in raft-log order with its region and index; a resume from positions() after a
// disconnect, with no gap and no repeat; a position the log no longer holds is a typed error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvClient } from "../../src/client/client.js";
import { PositionCompactedError } from "../../src/client/errors.js";
import type { RawWatch, RawWatchEvent } from "../../src/client/raw-watch.js";
import { waitFor } from "../harness/wait.js";
import { expectRaftOrder, sawInitialized, readUntil, sawKey, seenOf } from "./raw-watch-helpers.js";
import { WatchCluster } from "./watch-cluster.js";

describe("raw watch on one cluster", () => {
  let cluster: WatchCluster;
  let kv: KvClient;
  beforeAll(async () => {
    cluster = new WatchCluster();
    kv = await cluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.shutdown();
  });

  it("delivers puts, ttl puts, deletes, a CAS that swapped and a DeleteRange's keys once each, in raft order", async () => {
    const watch = kv.watchRaw("r1/");
    try {
      // From now: what the writes below do comes after the feed started.
      await readUntil(watch, sawInitialized, 10_000, "INITIALIZED");
      const before = Date.now();
      await kv.put("r1/a", "1");
      await kv.put("r1/b", "2", "", { ttlSeconds: 3600 });
      await kv.put("other", "outside the prefix");
      await kv.delete("r1/a");
      expect((await kv.compareAndSwap("r1/b", "3", { value: "2" })).succeed).toBe(true);
      expect((await kv.compareAndSwap("r1/b", "never", { value: "wrong" })).succeed).toBe(false);
      await kv.put("r1/c", "4");
      await kv.put("r1/d", "5");
      await kv.deleteRange("r1/b", "r1/d");
      await kv.put("r1/end", "sentinel");
      const events = await readUntil(watch, sawKey("r1/end"), 15_000, "the sentinel put");
      const changes = events.filter((e) => e.type !== "initialized");
      expect(changes.map(seenOf)).toEqual([
        { type: "put", key: "r1/a", value: "1" },
        { type: "put", key: "r1/b", value: "2", expires: true },
        { type: "delete", key: "r1/a" },
        { type: "put", key: "r1/b", value: "3" },
        { type: "put", key: "r1/c", value: "4" },
        { type: "put", key: "r1/d", value: "5" },
        { type: "delete", key: "r1/b" },
        { type: "delete", key: "r1/c" },
        { type: "put", key: "r1/end", value: "sentinel" },
      ]);
      const ttlPut = changes[1]!;
      expect(ttlPut.type === "put" && ttlPut.expiresAtMs).toBeGreaterThanOrEqual(before + 3_590_000);
      expectRaftOrder(changes);
      // One entry each, except the DeleteRange: its two deletes share its index.
      const indexes = changes.map((e) => e.index);
      expect(new Set(indexes).size).toBe(indexes.length - 1);
      expect(changes[6]!.index).toBe(changes[7]!.index);
    } finally {
      watch.stop();
    }
  }, 40_000);

  it("resumes from positions() after a disconnect: no change is lost or repeated", async () => {
    const first = kv.watchRaw("r2/");
    let positions: ReturnType<RawWatch["positions"]>;
    const seen: RawWatchEvent[] = [];
    try {
      await readUntil(first, sawInitialized, 10_000, "INITIALIZED");
      for (let i = 0; i < 5; i++) await kv.put(`r2/k${i}`, `a${i}`);
      await readUntil(first, sawKey("r2/k4"), 10_000, "the first five puts", seen);
      positions = first.positions();
    } finally {
      first.stop();
    }
    expect(positions.length).toBe(1);
    expect(positions[0]!.index).toBe(seen[seen.length - 1]!.index);
    // Written while nobody watches: the resumed watch replays them from the stored records.
    for (let i = 5; i < 10; i++) await kv.put(`r2/k${i}`, `b${i}`);
    await kv.delete("r2/k0");
    const second = kv.watchRaw("r2/", { from: positions });
    try {
      const resumed = await readUntil(second, sawKey("r2/k9"), 10_000, "the puts made while disconnected");
      await kv.put("r2/live", "after");
      await readUntil(second, sawKey("r2/live"), 10_000, "a live put after the replay", resumed);
      const all = [...seen, ...resumed].filter((e) => e.type !== "initialized");
      expect(all.map(seenOf)).toEqual([
        ...[0, 1, 2, 3, 4].map((i) => ({ type: "put", key: `r2/k${i}`, value: `a${i}` })),
        ...[5, 6, 7, 8, 9].map((i) => ({ type: "put", key: `r2/k${i}`, value: `b${i}` })),
        { type: "delete", key: "r2/k0" },
        { type: "put", key: "r2/live", value: "after" },
      ]);
      expectRaftOrder(all);
      expect(new Set(all.map((e) => e.index)).size).toBe(all.length);
    } finally {
      second.stop();
    }
  }, 40_000);
  it("a consumer that falls behind its highWaterMark still gets every change once, in order", async () => {
    const watch = kv.watchRaw("r4/", { highWaterMark: 4 });
    try {
      await readUntil(watch, sawInitialized, 10_000, "INITIALIZED");
      // Nobody reads while these land: the watch drops its feed past 4 events and resumes later.
      for (let i = 0; i < 30; i++) await kv.put(`r4/k${String(i).padStart(2, "0")}`, `v${i}`);
      const events = await readUntil(watch, sawKey("r4/k29"), 15_000, "the 30th put");
      const changes = events.filter((e) => e.type !== "initialized");
      expect(changes.map(seenOf)).toEqual(
        [...Array(30).keys()].map((i) => ({ type: "put", key: `r4/k${String(i).padStart(2, "0")}`, value: `v${i}` })),
      );
      expectRaftOrder(changes);
      expect(watch.sheds, "the watch never dropped its feed for the slow consumer").toBeGreaterThan(0);
    } finally {
      watch.stop();
    }
  }, 40_000);
});

describe("raw watch and log compaction", () => {
  let cluster: WatchCluster;
  let kv: KvClient;
  beforeAll(async () => {
    // A short log: a few dozen writes compact it past an old position.
    cluster = new WatchCluster({ config: { raftLogGcCountLimit: 20 } });
    kv = await cluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.shutdown();
  });

  it("a position older than the retained log fails the watch with PositionCompactedError, never a silent gap", async () => {
    const first = kv.watchRaw("r3/");
    let positions: ReturnType<RawWatch["positions"]>;
    try {
      await readUntil(first, sawInitialized, 10_000, "INITIALIZED");
      await kv.put("r3/a", "1");
      await readUntil(first, sawKey("r3/a"), 10_000, "the first put");
      positions = first.positions();
    } finally {
      first.stop();
    }
    let n = 0;
    const error = await waitFor(
      async () => {
        for (let i = 0; i < 30; i++) await kv.put(`r3/k${n++}`, "v");
        const again = kv.watchRaw("r3/", { from: positions });
        try {
          const next = await again.next();
          // Not compacted yet: the replay starts (the put of r3/k0): write more and try again.
          expect(next.done).toBe(false);
          return undefined;
        } catch (err) {
          return err;
        } finally {
          again.stop();
        }
      },
      { timeoutMs: 20_000, message: "the log never compacted past the saved position" },
    );
    expect(error).toBeInstanceOf(PositionCompactedError);
    const pc = error as PositionCompactedError;
    expect(pc.regionId).toBe(positions[0]!.regionId);
    expect(pc.fromIndex).toBe(positions[0]!.index);
    expect(pc.oldestIndex).toBeGreaterThan(pc.fromIndex);
    // Asked to, the watch says so with a reset event and goes on from now.
    const reset = kv.watchRaw("r3/", { from: positions, resetOnCompacted: true });
    try {
      const events = await readUntil(reset, sawInitialized, 10_000, "a reset, then INITIALIZED");
      expect(events.map((e) => e.type)).toEqual(["reset", "initialized"]);
      const r = events[0]!;
      expect(r.type === "reset" && [r.regionId, r.index, r.oldestIndex > r.index]).toEqual([
        positions[0]!.regionId,
        positions[0]!.index,
        true,
      ]);
      expect(reset.positions()[0]!.index).toBe(events[1]!.index);
      await kv.put("r3/after-reset", "v");
      await readUntil(reset, sawKey("r3/after-reset"), 10_000, "a put after the reset", events);
    } finally {
      reset.stop();
    }
  }, 40_000);
});
