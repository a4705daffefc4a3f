import type { Ready } from "../../raft/index.js";
import type { WriteBatch } from "../engine/index.js";
import type { PeerStorage } from "./peer-storage.js";
import { mergeRange } from "./region-worker.js";

/**
 * What one peer still owes the raft engine beyond its Readies: log entries to delete (after a
 * CompactLog or a snapshot) and a raft state that must be written though raft reports no change
 * (a new peer, a deletion). All of it goes in the store loop's next raft batch.
 */
export class PeerLogWrites {
  /** Raft log entries (from, to] to delete in the next raft batch. */
  private pendingDelete: { from: bigint; to: bigint } | undefined;
  /** The raft state must be written in the next raft batch even if raft reports no change. */
  private stateDirty = false;

  constructor(private readonly storage: PeerStorage) {}

  /** True when the next raft batch must carry something for this peer even without a Ready. */
  pending(): boolean {
    return this.stateDirty || this.pendingDelete !== undefined;
  }

  /** Puts the log deletions, new entries and raft state (as `rd` changes them) in the raft batch. */
  write(raftWb: WriteBatch, rd: Ready | undefined): void {
    if (this.pendingDelete) {
      this.storage.deleteLogRange(raftWb, this.pendingDelete.from, this.pendingDelete.to);
      this.pendingDelete = undefined;
    }
    if (rd) {
      this.storage.append(rd.entries, raftWb);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
    }
    // A commit index alone is not written: it is the same on a quorum, and on restart the log
    // reloads with a commit at least the applied index. Skipping it saves the next write's
    // engine round trip; the newest commit goes with the next entries, term or vote.
    if (rd?.mustSync || this.stateDirty) {
      this.storage.writeRaftState(raftWb);
      this.stateDirty = false;
    }
  }

  /** The raft log entries (from, to] go in the next raft batch, with the raft state. */
  deleteLater(range: { from: bigint; to: bigint }): void {
    this.pendingDelete = mergeRange(this.pendingDelete, range);
    this.stateDirty = true;
  }

  /** The raft state goes in the next raft batch even if raft reports no change. */
  stateNextTurn(): void {
    this.stateDirty = true;
  }
}
