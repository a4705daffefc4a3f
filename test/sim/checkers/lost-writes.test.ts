import { describe, expect, it } from "vitest";
import { checkNoLostWrites } from "./lost-writes.js";
import { cas, del, failed, get, put } from "./ops.js";

const finalRead = (entries: Array<[string, string | null]>) => new Map(entries);

describe("no acknowledged write lost", () => {
  it("passes when the final value is the last acknowledged write", () => {
    const h = [put(0, "x", "a", 0, 1), put(0, "x", "b", 2, 3), get(1, "x", "b", 4, 5)];
    const result = checkNoLostWrites(h, finalRead([["x", "b"]]));
    expect(result).toMatchObject({ ok: true, acknowledgedWrites: 2 });
  });

  it("passes when either of two concurrent writes wins", () => {
    const h = [put(0, "x", "a", 0, 10), put(1, "x", "b", 5, 6)];
    expect(checkNoLostWrites(h, finalRead([["x", "a"]])).ok).toBe(true);
    expect(checkNoLostWrites(h, finalRead([["x", "b"]])).ok).toBe(true);
  });

  it("passes when an unknown write applied late over an acknowledged one", () => {
    const h = [put(0, "x", "late", 0), put(1, "x", "b", 10, 11)];
    expect(checkNoLostWrites(h, finalRead([["x", "late"]])).ok).toBe(true);
  });

  it("passes for a delete that came last, and for a swapped cas", () => {
    expect(checkNoLostWrites([put(0, "x", "a", 0, 1), del(0, "x", 2, 3)], finalRead([["x", null]])).ok).toBe(true);
    const swapped = [put(0, "y", "a", 0, 1), cas(0, "y", "a", "b", true, 2, 3)];
    expect(checkNoLostWrites(swapped, finalRead([["y", "b"]])).ok).toBe(true);
  });

  it("reports an acknowledged write that an older write overwrote", () => {
    const h = [put(0, "x", "a", 0, 1), put(1, "x", "b", 2, 3)];
    const result = checkNoLostWrites(h, finalRead([["x", "a"]]));
    expect(result.ok).toBe(false);
    expect(result.violations).toHaveLength(1);
    expect(result.violations[0]).toMatchObject({ kind: "lost", key: "x", operation: h[1] });
    expect(result.report).toBe(
      'acknowledged write lost: c1 put "x"="b"  [2, 3]; final read "a", and no write of that value could follow it' +
        ' (the final value came from: c0 put "x"="a"  [0, 1])',
    );
  });

  it("reports acknowledged writes gone when the key reads absent", () => {
    const result = checkNoLostWrites([put(0, "x", "a", 0, 1)], finalRead([["x", null]]));
    expect(result.violations.map((v) => v.kind)).toEqual(["lost"]);
  });

  it("reports a final value nobody wrote, and one written only by a failed op", () => {
    const ghost = checkNoLostWrites([put(0, "x", "a", 0, 1)], finalRead([["x", "ghost"]]));
    expect(ghost.violations.map((v) => v.kind)).toEqual(["phantom"]);
    expect(ghost.report).toContain('final value "ghost" was never written');
    const liar = failed(put(1, "x", "b", 2, 3));
    const lied = checkNoLostWrites([put(0, "x", "a", 0, 1), liar], finalRead([["x", "b"]]));
    expect(lied.violations[0]).toMatchObject({ kind: "phantom", operation: liar });
    expect(lied.report).toContain("written by an op reported failed");
  });

  it("reports a written key missing from the final read", () => {
    const result = checkNoLostWrites([put(0, "x", "a", 0, 1), put(0, "y", "b", 0, 1)], finalRead([["x", "a"]]));
    expect(result.violations).toEqual([expect.objectContaining({ kind: "missing-final-read", key: "y" })]);
  });

  it("honours initial values", () => {
    const initial = new Map([["x", "seeded"]]);
    expect(checkNoLostWrites([put(0, "x", "a", 0)], finalRead([["x", "seeded"]]), initial).ok).toBe(true);
    expect(checkNoLostWrites([put(0, "x", "a", 0, 1)], finalRead([["x", "seeded"]]), initial).ok).toBe(false);
  });
});
