import type { Entry } from "../../raft/eraftpb.js";

/**
 * What the raftstore tells about its own work, for metrics and the slow log. The raftstore reads
 * no clock for it: it only says when each stage of a write or a turn is reached, and the
 * observer (src/kv/status) times them. The default observer does nothing.
 */

/** How a write ended for its client: applied, outcome unknown (StaleCommand), or refused. */
export type WriteOutcome = "applied" | "stale" | "refused";

/** One write, from arrival at its peer to its answer. */
export interface WriteTimeline {
  /** Its entry was appended to the raft log (the turn after it arrived). */
  proposed(): void;
  /** Raft reported its entry committed. */
  committed(): void;
  answered(outcome: WriteOutcome): void;
}

/** One store-loop turn: persist (the raft batch), apply (the kv batch), done. */
export interface TurnTimeline {
  /** The raft batch is built and its write starts. */
  persistStarted(): void;
  /** The raft batch is written: `entries` log entries of `readies` Readies, fsynced or not. */
  persisted(readies: number, entries: number, synced: boolean): void;
  applyStarted(): void;
  /** The kv batch is written with `entries` committed entries. */
  applied(entries: number): void;
  done(): void;
}

export interface RaftstoreObserver {
  write(regionId: bigint): WriteTimeline;
  turn(): TurnTimeline;
  /**
   * Each committed entry a replica applies, in log order, on the store loop (so it must be
   * cheap): the simulation checks that every replica applies the same entry at each index.
   */
  applied?(storeId: bigint, peerId: bigint, regionId: bigint, entry: Entry): void;
}

const NO_WRITE: WriteTimeline = { proposed() {}, committed() {}, answered() {} };
const NO_TURN: TurnTimeline = { persistStarted() {}, persisted() {}, applyStarted() {}, applied() {}, done() {} };

export const NO_OBSERVER: RaftstoreObserver = { write: () => NO_WRITE, turn: () => NO_TURN };
