// DeleteRange at apply (raft_cmdpb CmdType 7): the keys a range delete removes are listed before
// the turn applies (the engine's keys, plus the ones earlier entries of the same turn put, which
// are only in the batch), clipped to the region; a range that leaves the region is refused.
import { afterEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/eraftpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { Region } from "../../src/proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { Engine, RAW_CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { RangeDeleteKeys } from "../../src/kv/raftstore/delete-range.js";
import { mayHoldRangeDelete, rangeInRegion, scanRangeDeletes } from "../../src/kv/raftstore/delete-range.js";
import { ConditionalReads } from "../../src/kv/raftstore/conditional-write.js";
import { tempDir } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);
const region = (start: string, end: string) =>
  Region.fromPartial({ id: 2n, startKey: b(start), endKey: b(end), regionEpoch: { confVer: 1n, version: 1n } });

function entry(index: bigint, requests: object[]): Entry {
  const data = Buffer.from(
    RaftCmdRequest.encode(RaftCmdRequest.fromPartial({ header: { regionId: 2n }, requests })).finish(),
  );
  return { entryType: EntryType.EntryNormal, term: 1n, index, data, context: Buffer.alloc(0) } as Entry;
}
const put = (key: string) => ({ cmdType: CmdType.Put, put: { cf: RAW_CF_DEFAULT, key: b(key), value: b("v") } });
const deleteRange = (start: string, end: string) => ({
  cmdType: CmdType.DeleteRange,
  deleteRange: { cf: RAW_CF_DEFAULT, startKey: b(start), endKey: b(end) },
});

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function engineWith(keys: string[]): Promise<Engine> {
  const dir = tempDir("tinykv-delrange-");
  const kv = await Engine.open(dir.path);
  cleanup = async () => {
    await kv.close();
    dir.cleanup();
  };
  const wb = kv.newBatch();
  for (const k of keys) wb.put(RAW_CF_DEFAULT, b(k), b("old"));
  await wb.write(true);
  return kv;
}

describe("DeleteRange apply", () => {
  it("lists the engine's keys in the range, clipped to the region, and the keys put before it in the turn", async () => {
    const kv = await engineWith(["a", "c", "e", "g", "m", "q"]);
    const r = region("b", "p");
    const entries = [entry(5n, [put("d")]), entry(6n, [deleteRange("c", "z")]), entry(7n, [put("f")])];
    const out: RangeDeleteKeys = new Map();
    await scanRangeDeletes(kv, r, entries, 4n, out, new ConditionalReads());
    expect([...out.keys()].map((e) => e.index)).toEqual([6n]);
    const keys = out.get(entries[1]!)![0]!.map(String).sort();
    // "q" is past the region's end: clipped; "f" comes after the delete in the batch: not listed.
    expect(keys).toEqual(["c", "d", "e", "g", "m"]);
  });

  it("skips entries already applied and turns without a DeleteRange", async () => {
    const kv = await engineWith(["c"]);
    const entries = [entry(3n, [deleteRange("a", "z")]), entry(4n, [put("x")])];
    expect(mayHoldRangeDelete(entries, 3n), "entry 3 is applied already").toBe(false);
    expect(mayHoldRangeDelete(entries, 2n)).toBe(true);
    const out: RangeDeleteKeys = new Map();
    await scanRangeDeletes(kv, region("", ""), entries, 3n, out, new ConditionalReads());
    expect(out.size).toBe(0);
  });

  it("is not fooled by a key or value holding a DeleteRange's bytes", () => {
    // 0x08 0x07 is how an encoded Request starts when cmd_type = DeleteRange.
    const tricky = Buffer.from([0x61, 0x08, 0x07, 0x08, 0x07]);
    const entries = [entry(5n, [{ cmdType: CmdType.Put, put: { cf: RAW_CF_DEFAULT, key: tricky, value: tricky } }])];
    expect(mayHoldRangeDelete(entries, 4n), "a put only").toBe(false);
    expect(mayHoldRangeDelete([...entries, entry(6n, [deleteRange("a", "b")])], 4n)).toBe(true);
  });

  it("refuses a range that leaves the region (KeyNotInRegion at proposal and apply)", () => {
    const r = region("b", "p");
    const range = (start: string, end: string) => ({ cf: RAW_CF_DEFAULT, startKey: b(start), endKey: b(end) });
    expect(rangeInRegion(range("b", "p"), r)).toBe(true);
    expect(rangeInRegion(range("c", "d"), r)).toBe(true);
    expect(rangeInRegion(range("a", "d"), r), "starts before the region").toBe(false);
    expect(rangeInRegion(range("c", "q"), r), "ends after the region").toBe(false);
    expect(rangeInRegion(range("c", ""), r), "no end, but the region has one").toBe(false);
    expect(rangeInRegion(range("c", ""), region("b", "")), "no end in the last region").toBe(true);
  });
});
