// MemoryStorage semantics the raftstore's own storage must share.
import { describe, expect, it } from "vitest";
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable, MemoryStorage } from "../../src/raft/testing.js";
import { ent } from "./harness.js";

function storageWith(...terms: [number, number][]): MemoryStorage {
  const s = new MemoryStorage();
  // A snapshot at the first entry stands in for the dummy entry, as in etcd's tests.
  const [i0, t0] = terms[0]!;
  if (i0 > 0)
    s.applySnapshot({
      data: Buffer.alloc(0),
      metadata: { index: BigInt(i0), term: BigInt(t0), confState: { nodes: [1n] } },
    });
  s.append(terms.slice(1).map(([i, t]) => ent(i, t)));
  return s;
}

describe("MemoryStorage", () => {
  it("term: compacted below the snapshot, unavailable past the end", () => {
    const s = storageWith([3, 3], [4, 4], [5, 5]);
    expect(() => s.term(2n)).toThrow(ErrCompacted);
    expect(s.term(3n)).toBe(3n);
    expect(s.term(5n)).toBe(5n);
    expect(() => s.term(6n)).toThrow(ErrUnavailable);
  });

  it("entries: [lo, hi), compacted at or below the snapshot, at least one entry under a size limit", () => {
    const s = storageWith([3, 3], [4, 4], [5, 5], [6, 6]);
    expect(() => s.entries(2n, 6n)).toThrow(ErrCompacted);
    expect(() => s.entries(3n, 4n)).toThrow(ErrCompacted);
    expect(s.entries(4n, 5n).map((e) => e.index)).toEqual([4n]);
    expect(s.entries(4n, 7n).map((e) => e.index)).toEqual([4n, 5n, 6n]);
    expect(() => s.entries(4n, 8n)).toThrow(ErrUnavailable);
    expect(s.entries(4n, 7n, 0).map((e) => e.index)).toEqual([4n]);
    expect(s.entries(4n, 7n, 50).map((e) => e.index)).toEqual([4n, 5n]);
  });

  it("first and last index follow compaction", () => {
    const s = storageWith([3, 3], [4, 4], [5, 5]);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([4n, 5n]);
    s.compact(4n);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([5n, 5n]);
    expect(s.term(4n)).toBe(4n); // the new dummy keeps the compacted entry's term
    expect(() => s.compact(4n)).toThrow(ErrCompacted);
    expect(() => s.compact(9n)).toThrow(ErrUnavailable);
  });

  it("append: ignores compacted entries, overwrites a conflicting suffix, refuses gaps", () => {
    const s = storageWith([3, 3], [4, 4], [5, 5]);
    s.append([ent(3, 3), ent(4, 6), ent(5, 6)]);
    expect(s.entries(4n, 6n).map((e) => [e.index, e.term])).toEqual([
      [4n, 6n],
      [5n, 6n],
    ]);
    s.append([ent(5, 7), ent(6, 7)]);
    expect(s.entries(4n, 7n).map((e) => e.term)).toEqual([6n, 7n, 7n]);
    expect(() => s.append([ent(9, 7)])).toThrow();
  });

  it("createSnapshot and applySnapshot refuse older snapshots; applySnapshot resets the log", () => {
    const s = storageWith([3, 3], [4, 4], [5, 5]);
    const snap = s.createSnapshot(4n, { nodes: [1n, 2n] }, Buffer.from("state"));
    expect(snap.metadata).toEqual({ index: 4n, term: 4n, confState: { nodes: [1n, 2n] } });
    expect(() => s.createSnapshot(3n, undefined, Buffer.alloc(0))).toThrow(ErrSnapOutOfDate);
    const other = new MemoryStorage();
    other.append([ent(1, 1)]);
    other.applySnapshot(snap);
    expect([other.firstIndex(), other.lastIndex()]).toEqual([5n, 4n]);
    expect(other.initialState().confState.nodes).toEqual([1n, 2n]);
    expect(() => other.applySnapshot(snap)).toThrow(ErrSnapOutOfDate);
  });

  it("initialState returns the hard state and the applied membership", () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 2n, vote: 1n, commit: 0n });
    s.setConfState({ nodes: [1n, 2n, 3n] });
    expect(s.initialState()).toEqual({
      hardState: { term: 2n, vote: 1n, commit: 0n },
      confState: { nodes: [1n, 2n, 3n] },
    });
  });
});
