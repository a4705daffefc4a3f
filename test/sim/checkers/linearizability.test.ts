// Hand-written register histories with a known answer, including the classic anomalies and the
// two register examples from porcupine's own tests (initial value "0").
import { describe, expect, it } from "vitest";
import type { RegisterOperation } from "./history.js";
import { HistoryError } from "./history.js";
import type { LinearizabilityResult } from "./linearizability.js";
import { checkLinearizable } from "./linearizability.js";
import { cas, del, failed, get, put } from "./ops.js";

const zero = new Map([["x", "0"]]);

function verdictOf(history: RegisterOperation[], initial?: Map<string, string>): LinearizabilityResult["verdict"] {
  return checkLinearizable(history, { initial }).verdict;
}

function failure(history: RegisterOperation[]) {
  const result = checkLinearizable(history);
  if (result.verdict !== "illegal") throw new Error(`expected a violation, got ${result.verdict}`);
  return result;
}

describe("linearizable histories pass", () => {
  it("sequential puts, gets and deletes", () => {
    const h = [put(0, "x", "a", 0, 1), get(0, "x", "a", 2, 3), del(0, "x", 4, 5), get(0, "x", null, 6, 7)];
    expect(verdictOf(h)).toBe("ok");
  });

  it("porcupine's example 1: concurrent reads see before and after a put", () => {
    const h = [put(0, "x", "100", 0, 100), get(1, "x", "100", 25, 75), get(2, "x", "0", 30, 60)];
    expect(verdictOf(h, zero)).toBe("ok");
  });

  it("a read concurrent with a put may see either value", () => {
    expect(verdictOf([put(0, "x", "a", 0, 10), get(1, "x", "a", 2, 3)])).toBe("ok");
    expect(verdictOf([put(0, "x", "a", 0, 10), get(1, "x", null, 2, 3)])).toBe("ok");
  });

  it("an unknown put may apply late, after a later acknowledged put", () => {
    const h = [put(0, "x", "a", 0), put(1, "x", "b", 10, 11), get(1, "x", "a", 20, 21)];
    expect(verdictOf(h)).toBe("ok");
  });

  it("an unknown put may never apply", () => {
    expect(verdictOf([put(0, "x", "a", 0), get(1, "x", null, 100, 101)])).toBe("ok");
  });

  it("an unknown put may apply between two reads long after its timeout", () => {
    const h = [put(0, "x", "a", 0), get(1, "x", null, 50, 51), get(1, "x", "a", 60, 61)];
    expect(verdictOf(h)).toBe("ok");
  });

  it("cas that swapped and cas that did not, and an unknown cas", () => {
    const h = [
      put(0, "x", "a", 0, 1),
      cas(0, "x", "a", "b", true, 2, 3),
      cas(1, "x", "a", "c", false, 4, 5),
      cas(1, "x", "b", "d", undefined, 6),
      get(0, "x", "d", 10, 11),
    ];
    expect(verdictOf(h)).toBe("ok");
    const notApplied = [...h.slice(0, 4), get(0, "x", "b", 10, 11)];
    expect(verdictOf(notApplied)).toBe("ok");
  });

  it("an unknown delete spent early on one order is still there on another order", () => {
    // Order put a, delete?, get, put c reaches the same ops and state as get, put a, put c, but
    // with the unknown delete spent; only the second order leaves it for the last read.
    const h = [
      del(9, "x", 0),
      put(1, "x", "a", 0, 5),
      get(2, "x", null, 1, 2),
      put(3, "x", "c", 6, 7),
      put(1, "x", "b", 8, 9),
      get(2, "x", null, 10, 11),
    ];
    expect(verdictOf(h)).toBe("ok");
  });

  it("an unknown put of a value nobody reads can still explain a cas that did not swap", () => {
    const h = [put(0, "x", "a", 0, 1), put(1, "x", "z", 2), cas(0, "x", "a", "b", false, 5, 6)];
    expect(verdictOf(h)).toBe("ok");
  });

  it("a value read twice around another write needs two writes of it", () => {
    const once = [put(0, "x", "a", 0), get(1, "x", "a", 5, 6), put(1, "x", "b", 7, 8), get(1, "x", "a", 9, 10)];
    expect(verdictOf(once)).toBe("illegal");
    expect(verdictOf([...once, put(2, "x", "a", 0)])).toBe("ok");
  });

  it("ops that touch the same instant count as concurrent", () => {
    expect(verdictOf([put(0, "x", "a", 0, 5), get(1, "x", null, 5, 6)])).toBe("ok");
  });

  it("failed ops and unknown reads constrain nothing", () => {
    const unknownRead: RegisterOperation = { client: 2, kind: "get", key: "x", call: 0, outcome: "unknown" };
    const h = [failed(put(0, "x", "a", 0, 1)), unknownRead, get(1, "x", null, 5, 6)];
    expect(verdictOf(h)).toBe("ok");
  });

  it("an empty history", () => {
    expect(checkLinearizable([])).toMatchObject({ verdict: "ok", keys: 0, operations: 0 });
  });
});

describe("non-linearizable histories fail with the smallest failing piece", () => {
  it("porcupine's example 2: a read sees the old value after another read saw the new", () => {
    const h = [put(0, "x", "200", 0, 100), get(1, "x", "200", 10, 30), get(2, "x", "0", 40, 90)];
    expect(verdictOf(h, zero)).toBe("illegal");
  });

  it("stale read: a read returns an overwritten value", () => {
    const h = [put(0, "x", "a", 0, 1), put(1, "x", "b", 2, 3), get(2, "x", "a", 4, 5)];
    const result = failure(h);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toMatchObject({ key: "x", minimal: true });
    expect(result.failures[0].operations).toEqual(h);
    expect(result.report).toContain('key "x" is not linearizable');
    expect(result.report).toContain('c2 get "x" -> "a"  [4, 5]');
  });

  it("lost update: two cas both swap from the same value", () => {
    const h = [put(0, "x", "0", 0, 1), cas(1, "x", "0", "1", true, 2, 5), cas(2, "x", "0", "2", true, 3, 6)];
    expect(failure(h).failures[0].operations).toEqual(h);
  });

  it("an unknown put cannot be seen before it was sent", () => {
    const h = [get(1, "x", "a", 0, 1), put(0, "x", "a", 2)];
    expect(failure(h).failures[0].operations).toHaveLength(2);
  });

  it("a read of a value nobody wrote", () => {
    expect(failure([get(0, "x", "ghost", 0, 1)]).failures[0].operations).toHaveLength(1);
  });

  it("a read of a value written only by a failed put", () => {
    expect(verdictOf([failed(put(0, "x", "a", 0, 1)), get(1, "x", "a", 2, 3)])).toBe("illegal");
  });

  it("a deleted value comes back", () => {
    expect(verdictOf([put(0, "x", "a", 0, 1), del(0, "x", 2, 3), get(1, "x", "a", 4, 5)])).toBe("illegal");
  });

  it("an acknowledged put is not visible to a later read", () => {
    expect(verdictOf([put(0, "x", "a", 0, 1), get(1, "x", null, 2, 3)])).toBe("illegal");
  });

  it("a cas that did not swap although the register held its expected value", () => {
    expect(verdictOf([put(0, "x", "a", 0, 1), cas(1, "x", "a", "b", false, 2, 3)])).toBe("illegal");
  });

  it("the piece keeps the write a kept read depends on, not only the read", () => {
    // Shrinking must not drop the put of "a" and blame a read of a value "nobody wrote".
    const noise = Array.from({ length: 20 }, (_, i) => get(3, "x", "b", 10 + 2 * i, 11 + 2 * i));
    const h = [put(0, "x", "a", 0, 1), put(1, "x", "b", 2, 3), ...noise, get(2, "x", "a", 60, 61)];
    const piece = failure(h).failures[0].operations;
    expect(piece).toContainEqual(h[0]);
    expect(piece).toContainEqual(h[1]);
    expect(piece).toContainEqual(h[h.length - 1]);
    expect(piece).toHaveLength(3);
  });

  it("only the failing key is reported, shrunk out of a long history", () => {
    const fine: RegisterOperation[] = [];
    for (let i = 0; i < 50; i++) {
      fine.push(put(i % 4, "y", `y${i}`, 10 * i, 10 * i + 3), get((i + 1) % 4, "y", `y${i}`, 10 * i + 5, 10 * i + 7));
      fine.push(put(i % 4, "x", `x${i}`, 10 * i, 10 * i + 3), get((i + 1) % 4, "x", `x${i}`, 10 * i + 5, 10 * i + 7));
    }
    const stale = get(5, "x", "x10", 300, 301);
    const result = failure([...fine, stale]);
    expect(result.failures.map((f) => f.key)).toEqual(["x"]);
    const piece = result.failures[0].operations;
    expect(piece).toContainEqual(stale);
    expect(piece.length).toBeLessThanOrEqual(3);
    expect(result.failures[0].originalCount).toBe(101);
    // The piece fails on its own.
    expect(checkLinearizable(piece).verdict).toBe("illegal");
  });
});

describe("budget and input validation", () => {
  it("reports unknown rather than searching forever", () => {
    // 24 mutually concurrent puts, then two reads of different values they wrote: no order of
    // the puts explains both, and the search must try every subset of them to see that.
    const h = Array.from({ length: 24 }, (_, i) => put(i, "x", `v${i}`, 0, 100));
    h.push(get(98, "x", "v0", 200, 201), get(99, "x", "v1", 202, 203));
    const result = checkLinearizable(h, { maxStepsPerKey: 20_000 });
    expect(result.verdict).toBe("unknown");
    expect(result).toMatchObject({ undecidedKeys: ["x"] });
    // The whole-history budget caps the sum over keys: a second hard key is not even started.
    const twoKeys = [...h, ...h.map((op) => ({ ...op, key: "y" }))];
    const capped = checkLinearizable(twoKeys, { maxStepsPerKey: 20_000, maxTotalSteps: 20_000 });
    expect(capped).toMatchObject({ verdict: "unknown", undecidedKeys: ["x", "y"], steps: 20_000 });
  });

  it("rejects malformed operations with the operation's index", () => {
    const bad = {
      client: 0,
      kind: "put",
      key: "x",
      value: "a",
      call: 5,
      return: 2,
      outcome: "ok",
    } as RegisterOperation;
    expect(() => checkLinearizable([put(0, "x", "a", 0, 1), bad])).toThrow(HistoryError);
    expect(() => checkLinearizable([put(0, "x", "a", 0, 1), bad])).toThrow(/#1 .*returns before it is called/);
    const noValue = { client: 0, kind: "get", key: "x", call: 0, return: 1, outcome: "ok" } as RegisterOperation;
    expect(() => checkLinearizable([noValue])).toThrow(/needs the value read/);
  });
});
