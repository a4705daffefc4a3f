/**
 * Deliberate bugs, for the simulator's proof that its checkers bite (test/sim/runner/
 * checkers-bite.test.ts): each switch turns off one safety mechanism so a test can show that
 * the simulation catches what happens then. NEVER for production: nothing reads them from a
 * config file or flag (resolveConfig rejects the key), and every default is the empty set.
 */
export type DeliberateBug =
  /** The raftstore serves a leader's reads from its kv engine at once, without ReadIndex. */
  | "read-without-read-index"
  /** The store loop writes raft log entries and hard state without fsync. */
  | "skip-raft-fsync"
  /** A restarted store loads its peers' hard state with the vote cleared. */
  | "forget-vote-on-restart"
  /** A transactional command releases its latches before its write has applied. */
  | "release-latches-before-apply"
  /** A conditional write (raw CAS) compares against the engine as the turn began, missing the turn's earlier writes. */
  | "cas-compares-turn-start";

export const DELIBERATE_BUGS: readonly DeliberateBug[] = [
  "read-without-read-index",
  "skip-raft-fsync",
  "forget-vote-on-restart",
  "release-latches-before-apply",
  "cas-compares-turn-start",
];

export type DeliberateBugs = ReadonlySet<DeliberateBug>;
