// TSO strictly increasing (in-process, over concurrent gRPC streams, across restarts) and unique ids across restarts.
import { credentials, Metadata } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { TsoResponse } from "../../src/proto/schedulerpb.js";
import { SchedulerClient, TsoRequest } from "../../src/proto/schedulerpb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { IdAllocator } from "../../src/scheduler/core/id-allocator.js";
import { MemoryMetaKV } from "../../src/scheduler/core/meta-kv.js";
import { MetaStorage } from "../../src/scheduler/core/meta-storage.js";
import { composeTs, MAX_LOGICAL, TimestampOracle } from "../../src/scheduler/tso/tso.js";
import { startScheduler, tempDir } from "./helpers.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("timestamp oracle (in-process)", () => {
  it("is strictly increasing even when the clock stands still or goes backwards, and survives a restart", async () => {
    const storage = new MetaStorage(new MemoryMetaKV());
    let now = 1_000_000;
    const tso = new TimestampOracle((ms) => storage.saveTsoHighWater(ms), { clock: () => now, saveWindowMs: 50 });
    await tso.init(await storage.loadTsoHighWater());
    const got: bigint[] = [];
    // 10,000 concurrent single requests plus batches big enough to exhaust a millisecond's logical space.
    const all = await Promise.all([
      ...Array.from({ length: 10_000 }, () => tso.next(1)),
      ...Array.from({ length: 8 }, () => tso.next(MAX_LOGICAL / 2)),
    ]);
    for (const t of all) {
      expect(t.logical).toBeLessThan(MAX_LOGICAL);
      got.push(composeTs(t));
    }
    for (let i = 1; i < got.length; i++) expect(got[i]! > got[i - 1]!, `ts ${i} after ${i - 1}`).toBe(true);
    const maxBefore = got[got.length - 1]!;

    // Restart with the wall clock moved backwards: the persisted window still keeps us ahead.
    now -= 10_000;
    const again = new TimestampOracle((ms) => storage.saveTsoHighWater(ms), { clock: () => now, saveWindowMs: 50 });
    await again.init(await storage.loadTsoHighWater());
    const first = composeTs(await again.next(1));
    expect(first > maxBefore, `first ts after restart ${first} > last before ${maxBefore}`).toBe(true);
  });

  it("rejects count 0 and counts beyond the logical space", async () => {
    const tso = new TimestampOracle(async () => {});
    await tso.init(0);
    await expect(tso.next(0)).rejects.toThrow(/count/);
    await expect(tso.next(MAX_LOGICAL)).rejects.toThrow(/count/);
  });
});

describe("id allocator", () => {
  it("hands out unique ids from 1 and never reissues one after a restart", async () => {
    const storage = new MetaStorage(new MemoryMetaKV());
    const seen = new Set<bigint>();
    let ids = new IdAllocator((e) => storage.saveAllocEnd(e), await storage.loadAllocEnd(), 100n);
    const first = await Promise.all(Array.from({ length: 250 }, () => ids.alloc()));
    expect(first[0]).toBe(1n);
    for (const id of first) seen.add(id);
    expect(seen.size).toBe(250);
    for (let round = 0; round < 3; round++) {
      ids = new IdAllocator((e) => storage.saveAllocEnd(e), await storage.loadAllocEnd(), 100n);
      const more = await Promise.all(Array.from({ length: 120 }, () => ids.alloc()));
      for (const id of more) {
        expect(seen.has(id), `id ${id} reissued after restart ${round}`).toBe(false);
        seen.add(id);
      }
    }
  });
});

describe("TSO and ids over gRPC, across a scheduler restart", () => {
  it("10,000 requests on 4 concurrent streams are strictly increasing and disjoint; restart continues above", async () => {
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    let server = await startScheduler(dir.path);
    cleanups.push(() => server.stop());
    const clusterId = server.clusterId;

    const raw = new SchedulerClient(server.addr, credentials.createInsecure());
    cleanups.push(() => raw.close());
    const perStream = 2500;
    const ranges: Array<[bigint, bigint]> = [];
    await Promise.all(
      Array.from(
        { length: 4 },
        (_, s) =>
          new Promise<void>((resolve, reject) => {
            const stream = raw.tso(new Metadata(), { deadline: Date.now() + 20_000 });
            let prev = -1n;
            let n = 0;
            stream.on("data", (resp: TsoResponse) => {
              const last = (resp.timestamp!.physical << 18n) | resp.timestamp!.logical;
              const firstTs = last - BigInt(resp.count) + 1n;
              if (firstTs <= prev) reject(new Error(`stream ${s}: ${firstTs} not above ${prev}`));
              prev = last;
              ranges.push([firstTs, last]);
              if (++n === perStream) {
                stream.end();
                resolve();
              }
            });
            stream.on("error", reject);
            for (let i = 0; i < perStream; i++)
              stream.write(TsoRequest.create({ header: { clusterId }, count: 1 + (i % 3) }));
          }),
      ),
    );
    expect(ranges).toHaveLength(10_000);
    ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < ranges.length; i++)
      expect(ranges[i]![0] > ranges[i - 1]![1], `range ${i} overlaps the previous`).toBe(true);
    const maxTs = ranges[ranges.length - 1]![1];

    // The typed client batches concurrent callers on one stream.
    const client = await SchedulerRpcClient.connect(server.addr);
    const tsList = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.tso(1 + (i % 2))));
    expect(new Set(tsList.map(String)).size).toBe(2000);
    for (const t of tsList) expect(t > maxTs).toBe(true);
    const ids: bigint[] = [];
    for (let i = 0; i < 1200; i += 100)
      ids.push(...(await Promise.all(Array.from({ length: 100 }, () => client.allocId()))));
    client.close();
    const before = { ts: tsList.reduce((a, b) => (a > b ? a : b)), ids: new Set(ids.map(String)) };
    expect(before.ids.size).toBe(1200);

    await server.stop();
    server = await startScheduler(dir.path);
    expect(server.clusterId, "cluster id survives a restart").toBe(clusterId);
    const c2 = await SchedulerRpcClient.connect(server.addr);
    cleanups.push(() => c2.close());
    const after = await c2.tso();
    expect(after > before.ts, `ts after restart ${after} > ${before.ts}`).toBe(true);
    for (let i = 0; i < 50; i++) {
      const id = await c2.allocId();
      expect(before.ids.has(String(id)), `id ${id} reissued after restart`).toBe(false);
    }
  });
});
