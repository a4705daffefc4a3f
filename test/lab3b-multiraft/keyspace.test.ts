import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CfName } from "../../src/kv/engine/index.js";
import { ALL_CFS, CF_DEFAULT, Engine, RAW_CF_DEFAULT } from "../../src/kv/engine/index.js";
import { checkSplit, keyInRegion, regionCursor, userKeyOf } from "../../src/kv/raftstore/index.js";
import type { Region } from "../../src/proto/metapb.js";
import { encodeKey } from "../../src/txn/index.js";
import { keyInRange } from "../../src/util/bytes.js";
import { seededRng, testSeed } from "../harness/rng.js";
import { tempDir } from "../harness/wait.js";

const hex = (b: Buffer) => b.toString("hex");

/** Keys made of the bytes that matter to EncodeBytes (0x00 padding, 0xF7..0xFF markers). */
function adversarialKey(rand: () => number): Buffer {
  const alphabet = [0x00, 0x01, 0x61, 0x6b, 0xf7, 0xfe, 0xff];
  const len = Math.floor(rand() * 19);
  return Buffer.from(Array.from({ length: len }, () => alphabet[Math.floor(rand() * alphabet.length)]!));
}

function regionsSplitAt(points: Buffer[]): Region[] {
  const bounds = [Buffer.alloc(0), ...points, Buffer.alloc(0)];
  return points.concat([Buffer.alloc(0)]).map((_, i) => ({
    id: BigInt(i + 1),
    startKey: bounds[i]!,
    endKey: bounds[i + 1]!,
    regionEpoch: { confVer: 1n, version: 1n },
    peers: [],
  }));
}

/**
 * The one routing rule (keyspace.ts): the regions of a store partition every CF, the region
 * cursor returns exactly the keys keyInRegion accepts, and a key whose user key parses is in
 * the region whose raw range holds that user key. Seeded; replay with SEED=<n>.
 */
describe("keyspace: stored keys partition into regions by user key", () => {
  const dir = tempDir("tinykv-keyspace-");
  let kv: Engine;
  beforeAll(async () => {
    kv = await Engine.open(dir.path);
  });
  afterAll(async () => {
    await kv.close();
    dir.cleanup();
  });

  it("every CF's keys fall in exactly one region; cursors, keyInRegion and user keys agree", async () => {
    const seed = testSeed();
    const rand = seededRng(seed);
    const why = `SEED=${seed}`;
    const points = [
      ...new Map(
        Array.from({ length: 6 }, () => adversarialKey(rand))
          .filter((k) => k.length > 0)
          .map((k) => [hex(k), k]),
      ).values(),
    ].sort(Buffer.compare);
    const regions = regionsSplitAt(points);
    const stored = new Map<CfName, Buffer[]>();
    const wb = kv.newBatch();
    for (const cf of ALL_CFS) {
      const keys = new Map<string, Buffer>();
      for (let i = 0; i < 150; i++) {
        const user = adversarialKey(rand);
        // Encoded CFs get MVCC keys and some that do not parse; the others get plain keys, some
        // of them shaped like MVCC keys (the raw key of issue 11's item 9).
        const key =
          cf === "default" || cf === "write"
            ? rand() < 0.9
              ? encodeKey(user, BigInt(Math.floor(rand() * 1000)))
              : user
            : rand() < 0.3
              ? encodeKey(user, 7n)
              : user;
        keys.set(hex(key), key);
      }
      stored.set(cf, [...keys.values()]);
      for (const k of keys.values()) wb.put(cf, k, Buffer.from("v"));
    }
    await wb.write(false);

    const snap = kv.snapshot();
    try {
      for (const cf of ALL_CFS) {
        const owner = new Map<string, bigint>();
        for (const region of regions) {
          const cursor = regionCursor(snap, cf, region);
          try {
            for (await cursor.seek(region.startKey); cursor.valid; await cursor.next()) {
              const k = hex(cursor.key);
              expect(owner.has(k), `${why}: ${cf} key ${k} in regions ${owner.get(k)} and ${region.id}`).toBe(false);
              owner.set(k, region.id);
              expect(
                keyInRegion(cf, cursor.key, region),
                `${why}: cursor of region ${region.id} returned ${cf} key ${k} outside it`,
              ).toBe(true);
            }
          } finally {
            await cursor.close();
          }
        }
        for (const key of stored.get(cf)!) {
          const id = owner.get(hex(key));
          expect(id, `${why}: ${cf} key ${hex(key)} in no region's cursor`).toBeDefined();
          expect(
            regions.filter((r) => keyInRegion(cf, key, r)).map((r) => r.id),
            `${why}: ${cf} key ${hex(key)}`,
          ).toEqual([id]);
          const user = userKeyOf(cf, key);
          if (user) {
            const byUserKey = regions.find((r) => keyInRange(user, r.startKey, r.endKey))!;
            expect(byUserKey.id, `${why}: ${cf} key ${hex(key)} (user key ${hex(user)})`).toBe(id);
          }
        }
      }
    } finally {
      await snap.close();
    }
  });

  it("the split key is a user key balancing the raw and the transactional default CFs together", async () => {
    const wb = kv.newBatch();
    for (const cf of ALL_CFS) {
      const snap = kv.snapshot();
      for await (const { key } of snap.rawRange(Buffer.from(`${cf}_`), Buffer.from(`${cf}\x60`))) wb.deleteMeta(key);
      await snap.close();
    }
    // Interleaved user keys: raw k000, k002, ...; transactional k001, k003, ... (two versions each).
    const value = Buffer.alloc(100, 0x76);
    for (let i = 0; i < 200; i++) {
      const user = Buffer.from(`k${String(i).padStart(3, "0")}`);
      if (i % 2 === 0) wb.put(RAW_CF_DEFAULT, user, value);
      else for (const ts of [10n, 20n]) wb.put(CF_DEFAULT, encodeKey(user, ts), value.subarray(0, 50));
    }
    await wb.write(false);
    const whole = regionsSplitAt([])[0]!;
    const perUser = { raw: 4 + 100, txn: 2 * (encodeKey(Buffer.from("k000"), 0n).length + 50) };
    const total = 100 * perUser.raw + 100 * perUser.txn;
    const res = await checkSplit(kv, whole, Math.floor(total / 2), total - 1);
    expect(res.approximateSize).toBe(total);
    // Half the bytes lie below user key k100, whichever space they are in.
    expect(res.splitKey?.toString()).toBe("k100");
    expect(
      (await checkSplit(kv, whole, Math.floor(total / 2), total)).splitKey,
      "not over the max size: no split",
    ).toBeUndefined();
  });
});
