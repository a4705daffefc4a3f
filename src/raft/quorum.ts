// Quorum arithmetic in one place: how many members must agree, and what a majority agreed on.

/** The smallest number of members that is more than half of n. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

export enum VoteResult {
  Pending,
  Won,
  Lost,
}

/** The outcome of an election among voters, given the votes recorded so far. */
export function voteResult(voters: Iterable<bigint>, votes: ReadonlyMap<bigint, boolean>): VoteResult {
  let members = 0;
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    members++;
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(members);
  if (granted >= q) return VoteResult.Won;
  if (members - rejected < q) return VoteResult.Lost;
  return VoteResult.Pending;
}

/** The highest index that a majority of the members holds, given each member's match index. */
export function committedIndex(matches: Iterable<bigint>): bigint {
  const sorted = [...matches].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  if (sorted.length === 0) return 0n;
  return sorted[majority(sorted.length) - 1]!;
}

/** Whether the members in `ids` that count (per `counts`) form a majority of `members` members. */
export function hasMajority(ids: Iterable<bigint>, counts: (id: bigint) => boolean, members: number): boolean {
  let n = 0;
  for (const id of ids) if (counts(id)) n++;
  return n >= majority(members);
}
