// Region routing: lookup by key, previous region, scan, overlap eviction.
import { describe, expect, it } from "vitest";
import { Region } from "../../src/proto/metapb.js";
import { RegionTree } from "../../src/scheduler/core/region-tree.js";
import { newRegionInfo } from "../../src/scheduler/core/region-info.js";

const r = (id: number, start: string, end: string) =>
  newRegionInfo(
    Region.create({
      id: BigInt(id),
      startKey: Buffer.from(start),
      endKey: Buffer.from(end),
      regionEpoch: { version: 1n, confVer: 1n },
    }),
  );
const ids = (xs: { meta: { id: bigint } }[]) => xs.map((x) => Number(x.meta.id));
const k = (s: string) => Buffer.from(s);

describe("region tree", () => {
  const build = () => {
    const t = new RegionTree();
    // [ "", b ) [ b, d ) [ f, h ) [ h, +inf )   — a hole at [d, f)
    t.put(r(3, "f", "h"));
    t.put(r(1, "", "b"));
    t.put(r(4, "h", ""));
    t.put(r(2, "b", "d"));
    return t;
  };

  it("finds the region containing a key, including range edges and holes", () => {
    const t = build();
    expect(t.search(k(""))?.meta.id).toBe(1n);
    expect(t.search(k("a"))?.meta.id).toBe(1n);
    expect(t.search(k("b"))?.meta.id, "start key is inclusive").toBe(2n);
    expect(t.search(k("czzz"))?.meta.id).toBe(2n);
    expect(t.search(k("d")), "end key is exclusive; [d,f) is a hole").toBeUndefined();
    expect(t.search(k("e"))).toBeUndefined();
    expect(t.search(k("h"))?.meta.id).toBe(4n);
    expect(t.search(Buffer.from([0xff, 0xff, 0xff]))?.meta.id, "empty end key = +inf").toBe(4n);
  });

  it("finds the previous adjacent region", () => {
    const t = build();
    expect(t.searchPrev(k("a"))).toBeUndefined();
    expect(t.searchPrev(k("c"))?.meta.id).toBe(1n);
    expect(t.searchPrev(k("g")), "[b,d) is not adjacent to [f,h)").toBeUndefined();
    expect(t.searchPrev(k("z"))?.meta.id).toBe(3n);
    expect(t.searchPrev(k("e")), "key in a hole").toBeUndefined();
  });

  it("scans from the region containing start, bounded by end and limit", () => {
    const t = build();
    expect(ids(t.scan(k(""), k(""), 0))).toEqual([1, 2, 3, 4]);
    expect(ids(t.scan(k("a"), k(""), 2))).toEqual([1, 2]);
    expect(ids(t.scan(k("c"), k("g"), 0))).toEqual([2, 3]);
    expect(ids(t.scan(k("c"), k("f"), 0)), "end is exclusive").toEqual([2]);
    expect(ids(t.scan(k("e"), k(""), 0)), "start in a hole begins at the next region").toEqual([3, 4]);
    expect(ids(t.scan(k("zz"), k(""), 0))).toEqual([4]);
  });

  it("put evicts every overlapped region and returns them", () => {
    const t = build();
    expect(ids(t.put(r(9, "a", "g")))).toEqual([1, 2, 3]);
    expect(ids(t.all())).toEqual([9, 4]);
    expect(t.search(k(""))).toBeUndefined();
    expect(t.search(k("f"))?.meta.id).toBe(9n);
    expect(ids(t.put(r(10, "", "")))).toEqual([9, 4]);
    expect(t.length).toBe(1);
  });

  it("keeps thousands of regions ordered", () => {
    const t = new RegionTree();
    const n = 3000;
    const key = (i: number) => (i === 0 ? "" : i === n ? "" : `k${String(i).padStart(6, "0")}`);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 7919) % n) - ((b * 7919) % n));
    for (const i of order) expect(t.put(r(i + 1, key(i), key(i + 1)))).toEqual([]);
    expect(t.length).toBe(n);
    for (let i = 1; i < n; i += 97) expect(t.search(k(key(i)))?.meta.id).toBe(BigInt(i + 1));
    expect(ids(t.scan(k(key(10)), k(key(15)), 0))).toEqual([11, 12, 13, 14, 15]);
  });
});
