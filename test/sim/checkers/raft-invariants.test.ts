import { describe, expect, it } from "vitest";
import type { RaftEvent } from "./raft-invariants.js";
import { APPLY_WINDOW, checkRaftLog, digestBytes, RaftInvariantChecker } from "./raft-invariants.js";

const leader = (region: number, term: number, store: number, at?: number): RaftEvent => ({
  type: "leader",
  region,
  term,
  store,
  at,
});
const apply = (region: number, index: number, term: number, store: number, data: string): RaftEvent => ({
  type: "apply",
  region,
  index,
  term,
  store,
  data,
});

describe("raft invariants", () => {
  it("hold for one leader per term and identical applies", () => {
    const log = [
      leader(1, 5, 1),
      apply(1, 6, 5, 1, "put a"),
      apply(1, 6, 5, 2, "put a"),
      leader(1, 6, 2),
      leader(1, 6, 2), // the same peer reported twice is not a second leader
      apply(1, 7, 6, 2, "put b"),
      apply(1, 7, 6, 3, "put b"),
      leader(2, 6, 3), // another region, same term
      apply(2, 6, 6, 3, "put c"),
    ];
    const checker = checkRaftLog(log);
    expect(checker.ok).toBe(true);
    expect(checker.report()).toBe("raft invariants held over 9 events");
  });

  it("catch two leaders in one term of a region", () => {
    const checker = checkRaftLog([leader(1, 5, 1, 100), leader(1, 5, 2, 130)]);
    expect(checker.violations).toEqual([expect.objectContaining({ kind: "two-leaders", region: 1, term: 5 })]);
    expect(checker.report()).toBe("region 1 term 5 has two leaders: store 1 at 100 and store 2 at 130");
  });

  it("tell a re-added peer on the same store from the old one", () => {
    const log: RaftEvent[] = [
      { type: "leader", region: 1, term: 5, store: 1, peer: 2 },
      { type: "leader", region: 1, term: 5, store: 1, peer: 7 },
    ];
    expect(checkRaftLog(log).violations.map((v) => v.kind)).toEqual(["two-leaders"]);
  });

  it("catch replicas that applied different entries at one index", () => {
    const checker = new RaftInvariantChecker();
    expect(checker.observe(apply(1, 6, 5, 1, "put a"))).toBeUndefined();
    const violation = checker.observe(apply(1, 6, 5, 2, "put z"));
    expect(violation).toMatchObject({ kind: "divergent-apply", region: 1, index: 6 });
    // The checker keeps a digest of the first entry, not the entry.
    expect(violation?.message).toMatch(
      /^region 1 index 6 applied differently: store 1 applied term 5 #[0-9a-f]{14}, store 2 applied term 5 "put z"$/,
    );
    // Same data under another term is a different entry too.
    expect(checker.observe(apply(1, 6, 4, 3, "put a"))?.kind).toBe("divergent-apply");
  });

  it("compare digests: the same entry given as bytes' digest or applied again passes, another one fails", () => {
    const checker = new RaftInvariantChecker();
    const put = digestBytes(Buffer.from("put a"));
    const event = (store: number, digest: number): RaftEvent => ({
      type: "apply",
      region: 3,
      index: 9,
      term: 2,
      store,
      digest,
    });
    expect(checker.observe(event(1, put))).toBeUndefined();
    expect(checker.observe(event(1, put)), "a replay after a restart").toBeUndefined();
    expect(checker.observe(event(2, put))).toBeUndefined();
    expect(checker.observe(event(3, digestBytes(Buffer.from("put b"))))?.kind).toBe("divergent-apply");
    expect(checker.distinctApplies).toBe(1);
  });

  it("keep a bounded window per region: an index that left it is counted, not compared", () => {
    const checker = new RaftInvariantChecker();
    for (let index = 1; index <= 3 * APPLY_WINDOW; index++) checker.observe(apply(1, index, 1, 1, `e${index}`));
    expect(checker.distinctApplies).toBe(3 * APPLY_WINDOW);
    // Within the window a divergence is caught; past it, a lagging replica's apply is only counted.
    expect(checker.observe(apply(1, 3 * APPLY_WINDOW, 1, 2, "other"))?.kind).toBe("divergent-apply");
    expect(checker.observe(apply(1, 5, 1, 2, "other"))).toBeUndefined();
    expect(checker.uncheckedApplies).toBe(1);
  });

  it("rejects malformed events", () => {
    expect(() => checkRaftLog([{ type: "leader", region: 1, term: 1.5, store: 1 }])).toThrow(/term must be an integer/);
    expect(() => checkRaftLog([{ type: "vote" } as unknown as RaftEvent])).toThrow(/unknown type/);
  });
});
