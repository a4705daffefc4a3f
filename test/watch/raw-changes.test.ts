// The raw watch's change records (src/kv/raftstore/raw-changes.ts): what apply writes for an
// entry (puts with expiry, deletes, a DeleteRange's keys, a CAS only when it swapped, a split),
// the encoding round trip, and their removal with the log (CompactLog, snapshot, destroy).
import { afterEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/eraftpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { Region } from "../../src/proto/metapb.js";
import { AdminCmdType, CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { CF_DEFAULT, CF_WRITE, Engine, RAW_CF_DEFAULT, RAW_CF_TTL_DEFAULT } from "../../src/kv/engine/index.js";
import type { ApplyTarget } from "../../src/kv/raftstore/apply.js";
import { applyEntries } from "../../src/kv/raftstore/apply.js";
import type { PeerStorage } from "../../src/kv/raftstore/peer-storage.js";
import { encodeExpiry, prefetchConditionalReads } from "../../src/kv/raftstore/conditional-write.js";
import { readsForTurn } from "../../src/kv/raftstore/delete-range.js";
import type { RawChangeRecord } from "../../src/kv/raftstore/raw-changes.js";
import {
  clearRawChanges,
  decodeRawChangeRecord,
  decodeRawChangesSince,
  encodeRawChangeRecord,
  RawChangeEntryGoneError,
  RawChangeRecordError,
  readRawChanges,
} from "../../src/kv/raftstore/raw-changes.js";
import { rawChangeKey, rawChangesSinceKey } from "../../src/kv/raftstore/keys.js";
import { tempDir } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);
const REGION = Region.fromPartial({
  id: 2n,
  startKey: b(""),
  endKey: b(""),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 3n, storeId: 1n }],
});

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function openEngine(): Promise<Engine> {
  const dir = tempDir("tinykv-rawchanges-");
  const kv = await Engine.open(dir.path);
  cleanup = async () => {
    await kv.close();
    dir.cleanup();
  };
  return kv;
}

function entry(index: bigint, req: object): Entry {
  const data = Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({ header: { regionId: 2n, regionEpoch: REGION.regionEpoch }, ...req }),
    ).finish(),
  );
  return { entryType: EntryType.EntryNormal, term: 1n, index, data, context: Buffer.alloc(0) } as Entry;
}
/** The entries' data by index: what the feed reads back from the raft log. */
const dataOf = (entries: Entry[]) => new Map(entries.map((e) => [e.index, Buffer.from(e.data)]));
const put = (cf: string, key: string, value: Buffer | string) => ({
  cmdType: CmdType.Put,
  put: { cf, key: b(key), value: typeof value === "string" ? b(value) : value },
});
const del = (cf: string, key: string) => ({ cmdType: CmdType.Delete, delete: { cf, key: b(key) } });
const cas = (key: string, expected: string, value: string) => ({
  cmdType: CmdType.ConditionalWrite,
  conditionalWrite: {
    cf: RAW_CF_DEFAULT,
    key: b(key),
    expectedValue: b(expected),
    writes: [
      { put: { cf: RAW_CF_DEFAULT, key: b(key), value: b(value) } },
      { delete: { cf: RAW_CF_TTL_DEFAULT, key: b(key) } },
    ],
  },
});

/** Just what apply touches of a peer's storage. */
function fakeTarget(appliedIndex: bigint): ApplyTarget {
  const storage = {
    region: REGION,
    applyState: { appliedIndex, truncatedState: { index: 5n, term: 5n } },
    get appliedIndex() {
      return this.applyState.appliedIndex;
    },
    get truncatedIndex() {
      return this.applyState.truncatedState.index;
    },
    writeApplyState() {},
    writeRegionState() {},
    compactTo(index: bigint, term: bigint) {
      const old = this.applyState.truncatedState.index;
      this.applyState = { ...this.applyState, truncatedState: { index, term } };
      return old;
    },
  };
  return {
    storage: storage as unknown as PeerStorage,
    selfPeerId: 3n,
    applyConfChange() {},
    hasInitializedRegion: () => false,
  };
}

async function records(
  kv: Engine,
  from = 0n,
  to = 1000n,
  entries = new Map<bigint, Buffer>(),
): Promise<Array<[bigint, RawChangeRecord]>> {
  const snap = kv.snapshot();
  try {
    const out: Array<[bigint, RawChangeRecord]> = [];
    const entryData = async (index: bigint) => entries.get(index);
    for await (const { index, record } of readRawChanges(snap, 2n, from, to, entryData)) out.push([index, record]);
    return out;
  } finally {
    await snap.close();
  }
}

describe("raw change records", () => {
  it("encode and decode every kind, and refuse bytes they did not write", () => {
    const records: RawChangeRecord[] = [
      {
        kind: "changes",
        changes: [
          { op: "put", cf: CF_DEFAULT, key: b("k"), value: b("v"), expiresAtMs: 1_800_000_000_123 },
          { op: "put", cf: CF_WRITE, key: b(""), value: b("") },
          { op: "delete", cf: CF_DEFAULT, key: b("gone") },
        ],
      },
      { kind: "split", regions: [REGION, { ...REGION, id: 9n, startKey: b("m") }] },
    ];
    for (const r of records) expect(decodeRawChangeRecord(encodeRawChangeRecord(r))).toEqual(r);
    const good = encodeRawChangeRecord(records[0]!);
    expect(() => decodeRawChangeRecord(good.subarray(0, good.length - 3))).toThrow(RawChangeRecordError);
    expect(() => decodeRawChangeRecord(Buffer.from([2, 1, 0, 0, 0, 0]))).toThrow(/version 2/);
    expect(() => decodeRawChangeRecord(Buffer.concat([good, b("x")]))).toThrow(/left over/);
  });

  it("apply writes one record per entry that changed raw keys, with the expiry and only a CAS that swapped", async () => {
    const kv = await openEngine();
    const seed = kv.newBatch().put(RAW_CF_DEFAULT, b("c"), b("old"));
    await seed.write(true);
    const expiry = encodeExpiry(1_900_000_000_000);
    const entries = [
      entry(6n, { requests: [put(RAW_CF_DEFAULT, "a", "1"), put(RAW_CF_TTL_DEFAULT, "a", expiry)] }),
      entry(7n, { requests: [put(CF_WRITE, "txn-only", "x")] }), // transactional: no record
      entry(8n, { requests: [del(RAW_CF_DEFAULT, "a"), del(RAW_CF_TTL_DEFAULT, "a")] }),
      entry(9n, { requests: [cas("c", "wrong", "never")] }), // does not swap: no record
      entry(10n, { requests: [cas("c", "old", "new")] }),
    ];
    const reads = await prefetchConditionalReads(kv, entries);
    const wb = kv.newBatch();
    applyEntries(fakeTarget(5n), entries, wb, undefined, reads);
    await wb.write(true);
    expect(await records(kv, 0n, 1000n, dataOf(entries))).toEqual([
      [
        6n,
        {
          kind: "changes",
          changes: [
            {
              op: "put",
              cf: CF_DEFAULT,
              key: b("a"),
              value: b("1"),
              expiresAtMs: 1_900_000_000_000,
              inEntry: { request: 0, write: 0 },
            },
          ],
        },
      ],
      [8n, { kind: "changes", changes: [{ op: "delete", cf: CF_DEFAULT, key: b("a") }] }],
      [
        10n,
        {
          kind: "changes",
          changes: [{ op: "put", cf: CF_DEFAULT, key: b("c"), value: b("new"), inEntry: { request: 0, write: 1 } }],
        },
      ],
    ]);
    // The window a feed reads: after 6, up to 8.
    expect((await records(kv, 6n, 8n, dataOf(entries))).map(([i]) => i)).toEqual([8n]);
    // The region's first apply by this build says records start after its applied index then.
    expect(decodeRawChangesSince(await kv.getMeta(rawChangesSinceKey(2n)))).toBe(5n);
  });

  it("a put's record refers to its value in the raft entry instead of copying it", async () => {
    // Before, every raw put stored its value a second time while its entry was in the log: with
    // 1 MiB values that doubled the kv write and the memtable (the memory-bounds test caught it).
    const kv = await openEngine();
    const big = Buffer.alloc(64 * 1024, 7);
    const entries = [
      entry(6n, { requests: [put(RAW_CF_DEFAULT, "big", big)] }),
      entry(7n, { requests: [cas("big", "x", "never"), put(RAW_CF_DEFAULT, "small", "s")] }),
    ];
    const wb = kv.newBatch();
    applyEntries(fakeTarget(5n), entries, wb, undefined, await prefetchConditionalReads(kv, entries));
    await wb.write(true);
    const stored = await kv.getMeta(rawChangeKey(2n, 6n));
    expect(stored!.length).toBeLessThan(64);
    expect(await records(kv, 0n, 1000n, dataOf(entries))).toEqual([
      [
        6n,
        {
          kind: "changes",
          changes: [{ op: "put", cf: CF_DEFAULT, key: b("big"), value: big, inEntry: { request: 0, write: 0 } }],
        },
      ],
      [
        7n,
        {
          kind: "changes",
          changes: [{ op: "put", cf: CF_DEFAULT, key: b("small"), value: b("s"), inEntry: { request: 1, write: 0 } }],
        },
      ],
    ]);
    // The entry gone from the log (compacted after the kv snapshot was taken): the position is too.
    await expect(records(kv, 0n, 1000n, new Map())).rejects.toThrow(RawChangeEntryGoneError);
    // Decoded without its entry, such a record is refused, never read as an empty value.
    expect(() => decodeRawChangeRecord(stored!)).toThrow(/entry/);
  });

  it("a DeleteRange's record is the same however a replica's turns group the entries before it", async () => {
    // Before, a DeleteRange recorded every key it listed: one a failed CAS of the same turn did
    // not put, or one deleted earlier in the turn, came out as a delete on a replica that applied
    // them in one turn and not on one that applied them apart. A watch resumed on another replica
    // then saw other events.
    const range = {
      cmdType: CmdType.DeleteRange,
      deleteRange: { cf: RAW_CF_DEFAULT, startKey: b("a"), endKey: b("z") },
    };
    const entries = [
      entry(6n, { requests: [put(RAW_CF_DEFAULT, "a", "1")] }),
      entry(7n, { requests: [cas("b", "not there", "never")] }),
      entry(8n, { requests: [del(RAW_CF_DEFAULT, "c")] }),
      entry(9n, { requests: [range] }),
    ];
    const recordOf9 = async (turns: Entry[][]) => {
      const kv = await openEngine();
      const seed = kv.newBatch().put(RAW_CF_DEFAULT, b("c"), b("stored")).put(RAW_CF_DEFAULT, b("d"), b("stored"));
      await seed.write(true);
      const target = fakeTarget(5n);
      for (const turn of turns) {
        const { rangeKeys, reads } = await readsForTurn(kv, [
          { region: REGION, appliedIndex: target.storage.appliedIndex, entries: turn },
        ]);
        const wb = kv.newBatch();
        applyEntries(target, turn, wb, rangeKeys, reads);
        await wb.write(true);
      }
      const got = (await records(kv, 8n, 9n)).map(([, r]) => r);
      await cleanup?.();
      cleanup = undefined;
      return got;
    };
    const deletes = (...keys: string[]) => [
      { kind: "changes", changes: keys.map((k) => ({ op: "delete", cf: CF_DEFAULT, key: b(k) })) },
    ];
    expect(await recordOf9([entries])).toEqual(deletes("a", "d"));
    expect(await recordOf9(entries.map((e) => [e]))).toEqual(deletes("a", "d"));
  });

  it("a DeleteRange records the keys it deleted; a split records its regions", async () => {
    const kv = await openEngine();
    const target = fakeTarget(5n);
    const range = entry(6n, {
      requests: [
        { cmdType: CmdType.DeleteRange, deleteRange: { cf: RAW_CF_DEFAULT, startKey: b("a"), endKey: b("z") } },
      ],
    });
    const split = entry(7n, {
      adminRequest: { cmdType: AdminCmdType.Split, split: { splitKey: b("m"), newRegionId: 9n, newPeerIds: [10n] } },
    });
    const wb = kv.newBatch();
    // "q" twice: stored, and put again earlier in the turn; recorded once.
    applyEntries(target, [range, split], wb, new Map([[range, [[b("b"), b("q"), b("q")]]]]));
    await wb.write(true);
    const got = await records(kv);
    expect(got[0]).toEqual([
      6n,
      {
        kind: "changes",
        changes: [
          { op: "delete", cf: CF_DEFAULT, key: b("b") },
          { op: "delete", cf: CF_DEFAULT, key: b("q") },
        ],
      },
    ]);
    const [index, record] = got[1]!;
    expect(index).toBe(7n);
    expect(
      record.kind === "split" && record.regions.map((r) => [r.id, r.startKey.toString(), r.endKey.toString()]),
    ).toEqual([
      [2n, "", "m"],
      [9n, "m", ""],
    ]);
  });

  it("go with the log: a CompactLog deletes those at or below its index, a snapshot or destroy all of them", async () => {
    const kv = await openEngine();
    const target = fakeTarget(5n);
    const writes = [6n, 7n, 8n, 9n].map((i) => entry(i, { requests: [put(RAW_CF_DEFAULT, `k${i}`, "v")] }));
    let wb = kv.newBatch();
    applyEntries(target, writes, wb);
    await wb.write(true);
    const compact = entry(10n, {
      adminRequest: { cmdType: AdminCmdType.CompactLog, compactLog: { compactIndex: 8n, compactTerm: 1n } },
    });
    wb = kv.newBatch();
    applyEntries(target, [compact], wb);
    await wb.write(true);
    expect((await records(kv, 0n, 1000n, dataOf(writes))).map(([i]) => i)).toEqual([9n]);
    wb = kv.newBatch();
    await clearRawChanges(kv, wb, 2n);
    await wb.write(true);
    expect(await records(kv)).toEqual([]);
    expect(await kv.getMeta(rawChangesSinceKey(2n))).toBeUndefined();
  });
});
