// A leader's read lease, as TiKV's raftstore keeps one. With CheckQuorum and PreVote, a follower
// that heard from the leader neither campaigns nor votes for anyone else for an election timeout
// of its own ticks. So once a quorum acknowledged a message sent at time T, no other leader can
// exist before T + (an election timeout less a margin): until then this leader's log is the
// cluster's, and it may answer a linearizable read from its applied state without asking anyone.
//
// Time is the store's monotonic clock, and T is when the evidence was SENT (a proposal, a
// ReadIndex round, becoming leader), never when its acknowledgement arrived: a late ack proves
// only that the follower heard us at some point after we sent.

/** Why a lease ended before its time; each reason is a way another leader could appear sooner. */
export type LeaseDropReason =
  | "step-down"
  /** A transfer starts, or MsgTimeoutNow went out: the transferee campaigns at once and the voters ignore their lease. */
  | "transfer"
  /** Proposed or applied: acknowledgements counted under the old membership may not be a quorum of the new one. */
  | "conf-change"
  /** The region's range changed (a split; a merge if one is ever added). */
  | "region-change"
  /** The store's clocks jumped further than a lease between two looks (a paused or suspended process). */
  | "pause";

interface Evidence {
  /** The entry whose commit proves a quorum heard us; 0 for "any entry of the term" (becoming leader). */
  index: bigint;
  sentAt: number;
}

const MAX_UNCONFIRMED = 1024;

export class LeaderLease {
  private term = 0n;
  private expiresAt = Number.NEGATIVE_INFINITY;
  /** Evidence sent at or before the last drop proves nothing about the time after it. */
  private droppedAt = Number.NEGATIVE_INFINITY;
  /**
   * The term in which this leader sent MsgTimeoutNow. The message may arrive late, even after the
   * transfer was abandoned, and its receiver's votes then skip the lease: no lease for the rest of that term.
   */
  private transferTerm = -1n;
  /** Proposals of this term not yet known committed, oldest first. */
  private readonly unconfirmed: Evidence[] = [];
  private lastLook: { monotonic: number; wall: number } | undefined;
  private lastDrop: LeaseDropReason | undefined;

  constructor(
    /** How long a quorum's acknowledgement holds (config.leaderLeaseMs). */
    readonly durationMs: number,
  ) {}

  /** True while this leader of `term` may serve a read at monotonic time `now` from its own state. */
  valid(term: bigint, now: number): boolean {
    return term === this.term && now < this.expiresAt;
  }

  /** Monotonic ms left, 0 when not valid. */
  remainingMs(term: bigint, now: number): number {
    return this.valid(term, now) ? this.expiresAt - now : 0;
  }

  /** Why the lease last ended early (for tests and logs). */
  get lastDropReason(): LeaseDropReason | undefined {
    return this.lastDrop;
  }

  /** A quorum acknowledged a message this leader of `term` sent at `sentAt` (a ReadIndex round). */
  renew(term: bigint, sentAt: number): void {
    this.enterTerm(term);
    if (sentAt <= this.droppedAt || term === this.transferTerm) return;
    this.expiresAt = Math.max(this.expiresAt, sentAt + this.durationMs);
  }

  /** This peer became leader of `term`; `sentAt` was read before the step that made it so. */
  becameLeader(term: bigint, sentAt: number): void {
    this.enterTerm(term);
    this.unconfirmed.length = 0;
    // The no-op entry of the term is appended then: its commit, the first one of the term, renews.
    this.unconfirmed.push({ index: 0n, sentAt });
  }

  /** Entries up to `lastIndex` were proposed in `term` at `sentAt` (before the proposal was made). */
  proposed(term: bigint, lastIndex: bigint, sentAt: number): void {
    if (term !== this.term) return; // becameLeader starts the term's evidence
    this.unconfirmed.push({ index: lastIndex, sentAt });
    // Forgetting the oldest only shortens the lease a later commit gives.
    if (this.unconfirmed.length > MAX_UNCONFIRMED) this.unconfirmed.shift();
  }

  /** Raft committed up to `index`, an entry of `term` (never an older term's): the proposals up to it were acknowledged by a quorum. */
  committed(term: bigint, index: bigint): void {
    if (term !== this.term) return;
    let latest: Evidence | undefined;
    while (this.unconfirmed.length > 0 && this.unconfirmed[0]!.index <= index) latest = this.unconfirmed.shift();
    if (latest) this.renew(term, latest.sentAt);
  }

  /** The leader sent MsgTimeoutNow in `term`: see `transferTerm`. */
  timeoutNowSent(term: bigint, now: number): void {
    this.transferTerm = term;
    this.drop("transfer", now);
  }

  /**
   * This peer stopped leading. A term has one leader, so no evidence of this term can come back;
   * unlike `drop`, later evidence is not fenced off (a candidate's step-down and its election
   * may fall on the same clock reading).
   */
  steppedDown(): void {
    if (this.expiresAt !== Number.NEGATIVE_INFINITY) this.lastDrop = "step-down";
    this.expiresAt = Number.NEGATIVE_INFINITY;
    this.unconfirmed.length = 0;
  }

  drop(reason: LeaseDropReason, now: number): void {
    if (this.expiresAt !== Number.NEGATIVE_INFINITY) this.lastDrop = reason;
    this.expiresAt = Number.NEGATIVE_INFINITY;
    this.droppedAt = now;
  }

  /**
   * Called at each tick and before each lease read: if either clock moved further than a lease
   * since the last look, the process was paused or suspended (a suspended machine's monotonic
   * clock may stand still while the wall clock catches up) and the lease is gone.
   */
  look(monotonic: number, wall: number): void {
    const last = this.lastLook;
    this.lastLook = { monotonic, wall };
    if (!last) return;
    if (monotonic - last.monotonic > this.durationMs || wall - last.wall > this.durationMs)
      this.drop("pause", monotonic);
  }

  private enterTerm(term: bigint): void {
    if (term === this.term) return;
    this.term = term;
    this.expiresAt = Number.NEGATIVE_INFINITY;
    this.unconfirmed.length = 0;
  }
}
