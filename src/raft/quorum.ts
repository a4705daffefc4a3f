// Quorum arithmetic in one place: how many of a group must agree.

/** The smallest number of members that is more than half of n. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}
