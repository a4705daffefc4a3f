// Typed errors of the Raft library. Callers branch on the class (instanceof), never on the
// message text; the message carries the context (indexes, ids) that makes a log line useful.

export class RaftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The requested index is at or below the storage's snapshot/truncated index. */
export class ErrCompacted extends RaftError {
  constructor(
    readonly index: bigint,
    readonly firstIndex: bigint,
  ) {
    super(`requested index ${index} is unavailable due to compaction (first index ${firstIndex})`);
  }
}

/** The requested index is beyond the last index the storage holds. */
export class ErrUnavailable extends RaftError {
  constructor(
    readonly index: bigint,
    readonly lastIndex: bigint,
  ) {
    super(`requested index ${index} is unavailable (last index ${lastIndex})`);
  }
}

/** The application is still generating a snapshot; raft asks again later. */
export class ErrSnapshotTemporarilyUnavailable extends RaftError {
  constructor(detail = "snapshot is temporarily unavailable") {
    super(detail);
  }
}

/**
 * The storage holds these entries only on its disk and is reading them in the background
 * (raft-rs's LogTemporarilyUnavailable): raft skips this send, and the application calls
 * RawNode.onEntriesFetched() once storage can serve them.
 */
export class ErrLogTemporarilyUnavailable extends RaftError {
  constructor(
    readonly lo: bigint,
    readonly hi: bigint,
  ) {
    super(`entries [${lo}, ${hi}) are being fetched from disk`);
  }
}

/** A snapshot older than the one the storage already holds. */
export class ErrSnapOutOfDate extends RaftError {
  constructor(
    readonly index: bigint,
    readonly current: bigint,
  ) {
    super(`snapshot index ${index} is out of date (storage already at ${current})`);
  }
}

/** A proposal was not appended: not the leader, a transfer is pending, or a conf change is pending. */
export class ErrProposalDropped extends RaftError {
  constructor(readonly reason: string) {
    super(`raft proposal dropped: ${reason}`);
  }
}

/** The application stepped a message type that only raft itself may generate (Hup, Beat, Propose). */
export class ErrStepLocalMsg extends RaftError {
  constructor(readonly msgType: number) {
    super(`cannot step raft local message type ${msgType}`);
  }
}

/** Invalid configuration or misuse of the API (a programming error in the caller). */
export class ErrInvalidConfig extends RaftError {}

/** An internal invariant broke (storage corruption or a bug); continuing would risk safety. */
export class ErrInvariant extends RaftError {}
