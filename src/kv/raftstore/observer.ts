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

/** How a read ended for its client: a kv snapshot handed over, or a region error (retry elsewhere). */
export type ReadResult = "served" | "refused";

/**
 * One linearizable read, from arrival at its peer to its answer. The read is answered the moment
 * apply reaches its read index (the snapshot is taken then), so "applied" and "answered" are one.
 */
export interface ReadTimeline {
  /** Its ReadIndex went to raft (the turn after it arrived, batched with the turn's other reads). */
  sent(): void;
  /** Raft confirmed its read index: a quorum still follows this leader. */
  confirmed(): void;
  answered(outcome: ReadResult): void;
}

export interface RaftstoreObserver {
  write(regionId: bigint): WriteTimeline;
  read(regionId: bigint): ReadTimeline;
  turn(): TurnTimeline;
  /**
   * Each committed entry a replica applies, in log order, on the store loop (so it must be
   * cheap): the simulation checks that every replica applies the same entry at each index.
   * `rawRecord`: the raw change record the entry wrote in the same kv batch (raw-changes.ts).
   */
  applied?(storeId: bigint, peerId: bigint, regionId: bigint, entry: Entry, rawRecord?: Buffer): void;
  /** A snapshot stream to another store ended: `bytes` read from its file, all of them (complete) or not. */
  snapshotSent(bytes: number, complete: boolean): void;
  /** A snapshot stream from another store ended: `bytes` of data, saved (accepted) or refused. */
  snapshotReceived(bytes: number, accepted: boolean): void;
  /** An applied CompactLog made `entries` raft log entries garbage (deleted in the next raft batch). */
  logCompacted(entries: number): void;
}

const NO_WRITE: WriteTimeline = { proposed() {}, committed() {}, answered() {} };
const NO_READ: ReadTimeline = { sent() {}, confirmed() {}, answered() {} };
const NO_TURN: TurnTimeline = { persistStarted() {}, persisted() {}, applyStarted() {}, applied() {}, done() {} };

export const NO_OBSERVER: RaftstoreObserver = {
  write: () => NO_WRITE,
  read: () => NO_READ,
  turn: () => NO_TURN,
  snapshotSent() {},
  snapshotReceived() {},
  logCompacted() {},
};
