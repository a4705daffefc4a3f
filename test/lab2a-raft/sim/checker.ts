// Safety checks for the randomized simulation. Every violation throws SafetyViolation with the
// rule and the evidence; the driver adds the seed.
import type { Entry, Raft } from "../../../src/raft/testing.js";
import { StateType } from "../../../src/raft/testing.js";

export class SafetyViolation extends Error {}

/** 2 x 32-bit FNV-1a over a string: cheap, collision-unlikely digests for log prefixes. */
export function digest(prev: string, s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  const input = prev + "|" + s;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000193) ^ (h2 >>> 13);
  }
  return (h1 >>> 0).toString(16) + (h2 >>> 0).toString(16);
}

export function entryKey(e: Entry): string {
  return `${e.term}/${e.entryType}/${e.data.toString("hex")}`;
}

export class Checker {
  /** term -> the one leader of that term (election safety). */
  private leaderOfTerm = new Map<bigint, bigint>();
  /** `${index}/${term}` -> digest of the whole log prefix ending there (log matching). */
  private prefixByIndexTerm = new Map<string, string>();
  /** index -> digest of the state machine after applying it (state machine safety). */
  private appliedDigest = new Map<bigint, string>();
  /** index -> term of the entry applied there (committed entries, for leader completeness). */
  readonly committedTerm = new Map<bigint, bigint>();
  maxApplied = 0n;

  /** Election safety: at most one leader per term. Returns true for a leader not seen before. */
  observeLeader(r: Raft): boolean {
    if (r.state !== StateType.Leader) return false;
    const prev = this.leaderOfTerm.get(r.term);
    if (prev === undefined) {
      this.leaderOfTerm.set(r.term, r.id);
      this.checkLeaderCompleteness(r);
      return true;
    }
    if (prev !== r.id) {
      throw new SafetyViolation(`election safety: term ${r.term} has leaders ${prev} and ${r.id}`);
    }
    return false;
  }

  /** Leader completeness: every entry committed so far is in a new leader's log. */
  private checkLeaderCompleteness(r: Raft): void {
    const first = r.raftLog.firstIndex();
    const last = r.raftLog.lastIndex();
    for (const [index, term] of this.committedTerm) {
      if (index < first) continue; // covered by the leader's snapshot (checked via prefixes)
      if (index > last) {
        throw new SafetyViolation(
          `leader completeness: leader ${r.id} (term ${r.term}) lacks committed index ${index}`,
        );
      }
      const t = r.raftLog.termOrUndefined(index);
      if (t !== term) {
        throw new SafetyViolation(
          `leader completeness: leader ${r.id} (term ${r.term}) has term ${t} at committed index ${index}, want ${term}`,
        );
      }
    }
  }

  /** Log matching: two persisted logs with the same (index, term) have identical prefixes. */
  registerPrefix(index: bigint, term: bigint, prefix: string, who: bigint): void {
    const key = `${index}/${term}`;
    const prev = this.prefixByIndexTerm.get(key);
    if (prev === undefined) this.prefixByIndexTerm.set(key, prefix);
    else if (prev !== prefix) {
      throw new SafetyViolation(
        `log matching: node ${who} has a different log prefix ending at index ${index} term ${term}`,
      );
    }
  }

  prefixOf(index: bigint, term: bigint): string | undefined {
    return this.prefixByIndexTerm.get(`${index}/${term}`);
  }

  /** State machine safety: every node applies the same entry at each index, in order. */
  registerApply(who: bigint, index: bigint, term: bigint, smDigest: string): void {
    const prev = this.appliedDigest.get(index);
    if (prev === undefined) {
      this.appliedDigest.set(index, smDigest);
      this.committedTerm.set(index, term);
    } else if (prev !== smDigest) {
      throw new SafetyViolation(`state machine safety: node ${who} applied a different history at index ${index}`);
    }
    if (index > this.maxApplied) this.maxApplied = index;
  }

  /** A snapshot's state must equal what others applied at that index. */
  checkSnapshotState(who: bigint, index: bigint, smDigest: string): void {
    const prev = this.appliedDigest.get(index);
    if (prev !== undefined && prev !== smDigest) {
      throw new SafetyViolation(
        `state machine safety: node ${who} installed a snapshot at ${index} with a different state`,
      );
    }
  }
}
