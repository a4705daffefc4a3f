// The leader's view of one follower: how much of the log it has (match) and what to send next.
//  probe:     we do not know where its log ends; send one append per heartbeat round and back off.
//  replicate: it accepts appends; pipeline up to maxInflight appends optimistically.
//  snapshot:  a snapshot is in flight; send nothing until it is reported or acknowledged.

export enum ProgressState {
  Probe = "probe",
  Replicate = "replicate",
  Snapshot = "snapshot",
}

/** Ring buffer of the last index of each in-flight append, bounded by size. */
export class Inflights {
  private start = 0;
  count = 0;
  private readonly buffer: bigint[];

  constructor(readonly size: number) {
    this.buffer = new Array<bigint>(size).fill(0n);
  }

  add(lastIndex: bigint): void {
    if (this.full()) throw new Error("inflights: cannot add into a full window");
    this.buffer[(this.start + this.count) % this.size] = lastIndex;
    this.count++;
  }

  /** Frees every in-flight append whose last index is <= to (acknowledged). */
  freeLE(to: bigint): void {
    while (this.count > 0 && this.buffer[this.start]! <= to) {
      this.start = (this.start + 1) % this.size;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]!);
  }

  full(): boolean {
    return this.count >= this.size;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class Progress {
  match: bigint;
  next: bigint;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot in flight (snapshot state only). */
  pendingSnapshot = 0n;
  /** Heard from since the last check-quorum round (the leader itself always counts). */
  recentActive = false;
  /** Probe state: one append was sent; wait for a response or a heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;

  constructor(next: bigint, match: bigint, maxInflight: number) {
    this.next = next;
    this.match = match;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0n;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot's entries.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1n > pending + 1n ? this.match + 1n : pending + 1n;
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1n;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1n;
  }

  becomeSnapshot(snapshotIndex: bigint): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to n; returns false if it was stale. */
  maybeUpdate(n: bigint): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < n + 1n) this.next = n + 1n;
    return updated;
  }

  /** Records that entries up to lastIndex were sent (replicate state pipelines optimistically). */
  sentEntries(count: number, lastIndex: bigint): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1n;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === ProgressState.Probe) {
      this.msgAppFlowPaused = true;
    }
  }

  /**
   * The follower rejected an append at index rejected; matchHint is the highest index that may
   * still match. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: bigint, matchHint: bigint): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1n;
      return true;
    }
    if (this.next - 1n !== rejected) return false;
    let next = rejected < matchHint + 1n ? rejected : matchHint + 1n;
    if (next < this.match + 1n) next = this.match + 1n;
    if (next < 1n) next = 1n;
    this.next = next;
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
