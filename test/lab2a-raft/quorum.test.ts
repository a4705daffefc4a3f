// The quorum arithmetic the roles share: majorities, vote tallies, the committed index.
import { describe, expect, it } from "vitest";
import { VoteResult, committedIndex, majority, voteResult } from "../../src/raft/testing.js";

describe("quorum arithmetic", () => {
  it("a majority is more than half", () => {
    expect([1, 2, 3, 4, 5].map(majority)).toEqual([1, 2, 2, 3, 3]);
  });

  it("an election is won by a majority of yes, lost once a majority is out of reach", () => {
    const voters = [1n, 2n, 3n];
    expect(voteResult(voters, new Map([[1n, true]]))).toBe(VoteResult.Pending);
    expect(
      voteResult(
        voters,
        new Map([
          [1n, true],
          [2n, true],
        ]),
      ),
    ).toBe(VoteResult.Won);
    expect(
      voteResult(
        voters,
        new Map([
          [1n, true],
          [2n, false],
        ]),
      ),
    ).toBe(VoteResult.Pending);
    expect(
      voteResult(
        voters,
        new Map([
          [1n, true],
          [2n, false],
          [3n, false],
        ]),
      ),
    ).toBe(VoteResult.Lost);
    // Votes from nodes outside the configuration do not count.
    expect(
      voteResult(
        voters,
        new Map([
          [1n, true],
          [9n, true],
        ]),
      ),
    ).toBe(VoteResult.Pending);
  });

  it("the committed index is the highest index a majority holds", () => {
    expect(committedIndex([5n])).toBe(5n);
    expect(committedIndex([5n, 3n])).toBe(3n);
    expect(committedIndex([1n, 5n, 3n])).toBe(3n);
    expect(committedIndex([2n, 9n, 4n, 7n])).toBe(4n);
    expect(committedIndex([])).toBe(0n);
  });
});
