// Where a peer's lease (lease.ts) meets its raft node and its read queue: what raft did that
// renews or ends the lease, and the reads a valid lease serves without a ReadIndex round.
import type { RawNode, Ready } from "../../raft/index.js";
import type { Message } from "../../raft/eraftpb.js";
import { MessageType } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import type { EngineSnapshot } from "../engine/index.js";
import type { Runtime } from "../../util/runtime.js";
import type { ApplyOutcome } from "./apply.js";
import type { LeaseDropReason } from "./lease.js";
import { LeaderLease } from "./lease.js";
import type { QueuedRead, ReadQueue, ReadStamp } from "./reads.js";

/** A lease this close to its end is renewed by a ReadIndex round in the background while reads keep being served. */
const RENEW_AHEAD_FRACTION = 0.25;

export class PeerLease {
  readonly lease: LeaderLease;
  /** Monotonic time until which this peer, restarted, grants no votes (see holdVotesAfterRestart). */
  private votesHeldUntil: number | undefined;

  constructor(
    private readonly raw: RawNode,
    private readonly runtime: Runtime,
    durationMs: number,
  ) {
    this.lease = new LeaderLease(durationMs);
  }

  /** Stamps a ReadIndex round: confirmed, it proves a quorum heard this leader after now. */
  stamp(): ReadStamp {
    return { term: this.raw.basicStatus().hardState.term, sentAt: this.now() };
  }

  /** Runs a raft step, tick or campaign; if it made this peer leader, the term's evidence starts before it. */
  around(step: () => void): void {
    if (this.raw.isLeader()) {
      step();
      return;
    }
    const before = this.now();
    step();
    if (this.raw.isLeader()) this.lease.becameLeader(this.term(), before);
  }

  /**
   * A peer loaded at its store's start may have acknowledged a leader's message just before the
   * crash; having forgotten that leader, it would vote at once, and a new leader could be elected
   * while the old one's lease holds (TiKV issue 15035). So it grants no vote for an election timeout.
   */
  holdVotesAfterRestart(electionTimeoutMs: number): void {
    this.votesHeldUntil = this.runtime.monotonicNow() + electionTimeoutMs;
  }

  /** True when `m` is a request for this restarted peer's vote that it must not answer yet. */
  refusesVote(m: Message): boolean {
    if (this.votesHeldUntil === undefined) return false;
    if (m.msgType !== MessageType.MsgRequestVote && m.msgType !== MessageType.MsgRequestPreVote) return false;
    if (this.runtime.monotonicNow() < this.votesHeldUntil) return true;
    this.votesHeldUntil = undefined;
    return false;
  }

  /** A tick: a stalled or suspended process shows as a clock jump between two ticks. */
  tick(): void {
    this.lease.look(this.runtime.monotonicNow(), this.runtime.now());
  }

  /** Proposals up to `lastIndex` of `term` went into the log; `sentAt` was read before proposing. */
  proposed(term: bigint, lastIndex: bigint, sentAt: number): void {
    this.lease.proposed(term, lastIndex, sentAt);
  }

  /** The lease's clock: the store's monotonic clock. */
  now(): number {
    return this.runtime.monotonicNow();
  }

  drop(reason: LeaseDropReason): void {
    this.lease.drop(reason, this.now());
  }

  /** What a Ready tells: commits of this term renew; a step-down or a MsgTimeoutNow ends the lease. */
  ready(rd: Ready): void {
    const term = this.term();
    if (rd.softState && !this.raw.isLeader()) this.lease.steppedDown();
    for (const m of rd.messages) {
      if (m.msgType === MessageType.MsgTimeoutNow) this.lease.timeoutNowSent(term, this.now());
    }
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    // An older term's entry may be committed here without proof that anyone heard this leader.
    if (last && last.term === term && this.raw.isLeader()) this.lease.committed(term, last.index);
  }

  /** A conf change or a split applied: the lease is over (see LeaseDropReason). */
  applied(outcome: ApplyOutcome): void {
    if (outcome.confChanged) this.drop("conf-change");
    if (outcome.splitRegions.length > 0) this.drop("region-change");
  }

  /** ReadIndex rounds a quorum confirmed: each renews from when it was sent, if this peer still leads that term. */
  confirmed(stamps: ReadonlyArray<ReadStamp>): void {
    if (stamps.length === 0 || !this.raw.isLeader()) return;
    const term = this.term();
    for (const s of stamps) if (s.term === term) this.lease.renew(term, s.sentAt);
  }

  /**
   * Serves `batch` at the current commit index (each read still waits for apply to reach it) if
   * the lease holds; false when the batch must take a ReadIndex round.
   */
  serve(batch: QueuedRead[], reads: ReadQueue, applied: bigint, region: Region, snap: () => EngineSnapshot): boolean {
    const now = this.now();
    this.lease.look(now, this.runtime.now());
    const status = this.raw.basicStatus();
    if (status.leadTransferee !== 0n) this.drop("transfer");
    const term = status.hardState.term;
    if (!this.lease.valid(term, now)) return false;
    reads.servedLocally(batch, status.hardState.commit);
    reads.serve(applied, region, snap);
    if (this.lease.remainingMs(term, now) < this.lease.durationMs * RENEW_AHEAD_FRACTION && !reads.renewalInFlight()) {
      this.raw.readIndex(reads.sent([], { term, sentAt: now }));
    }
    return true;
  }

  private term(): bigint {
    return this.raw.basicStatus().hardState.term;
  }
}
