import type { Message, Ready } from "../../raft/index.js";
import {
  ConfChange,
  EntryType,
  ErrProposalDropped,
  RawNode,
  SnapshotStatus,
  StateType,
  majority,
  seededRandom,
} from "../../raft/index.js";
import type { Membership } from "../../proto/schedulerraftpb.js";
import { MetaWrite } from "../../proto/schedulerraftpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import type { CompactionPolicy, MemberStorage } from "./member-storage.js";
import { DEFAULT_COMPACTION } from "./member-storage.js";
import { applyConfChangeTo } from "./members.js";

/** The leader refused a membership change (another is still applying, or it just took over). */
export class MembershipChangeRefusedError extends Error {
  constructor(reason: string) {
    super(`membership change refused: ${reason}; retry in a moment`);
    this.name = "MembershipChangeRefusedError";
  }
}

/** A metadata write reached a member that is not the leader (or stopped being it meanwhile). */
export class NotLeaderError extends Error {
  constructor(
    readonly leaderId: bigint,
    readonly term: bigint,
    /** True when the write was appended and may still be applied by a later leader. */
    readonly outcomeUnknown = false,
  ) {
    super(
      `scheduler member is not the leader (term ${term}, leader ${leaderId === 0n ? "unknown" : leaderId})` +
        (outcomeUnknown ? "; the write may still apply" : ""),
    );
    this.name = "NotLeaderError";
  }
}

export interface MemberTiming {
  /** One raft tick, ms. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
}

export const DEFAULT_MEMBER_TIMING: MemberTiming = { tickMs: 100, electionTicks: 10, heartbeatTicks: 2 };

export interface MemberOptions {
  id: bigint;
  peerIds: bigint[];
  storage: MemberStorage;
  /** Sends raft messages to other members (best effort: raft retries what is lost). */
  send: (messages: Message[]) => void;
  runtime: Runtime;
  log: Logger;
  timing?: MemberTiming;
  /** The member could not persist its raft state and stopped: the process should exit. */
  onFatal?: (err: unknown) => void;
  /** When to snapshot the applied state and truncate the log. */
  compaction?: CompactionPolicy;
  /** The membership changed (a conf change applied, or a snapshot from the leader installed it). */
  onMembershipChange?: (m: Membership) => void;
}

export interface Role {
  isLeader: boolean;
  term: bigint;
  leaderId: bigint;
}

interface Pending {
  term: bigint;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * One member of the scheduler's Raft group: drives a RawNode as the store loop does (tick, step,
 * then per turn: one synced batch of entries + hard state + applied writes, send, resolve the
 * proposals that applied, advance). The leader also keeps a lease: it counts as leading only
 * while a quorum has answered it within half an election timeout, shorter than the time the
 * others wait before electing someone else, so a partitioned leader stops serving before a new
 * one can start.
 */
export class SchedulerMember {
  private readonly node: RawNode;
  private readonly pending = new Map<bigint, Pending>();
  private readonly lastHeard = new Map<bigint, number>();
  private readonly listeners = new Set<(role: Role) => void>();
  private readonly timing: MemberTiming;
  private tickTimer: TimerHandle | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private role: Role = { isLeader: false, term: 0n, leaderId: 0n };
  /** Callers waiting for a compaction the loop runs between two turns. */
  private compactionWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(private readonly opts: MemberOptions) {
    this.timing = opts.timing ?? DEFAULT_MEMBER_TIMING;
    this.node = new RawNode({
      id: opts.id,
      peers: opts.peerIds,
      electionTick: this.timing.electionTicks,
      heartbeatTick: this.timing.heartbeatTicks,
      storage: opts.storage,
      applied: opts.storage.applied,
      preVote: true,
      checkQuorum: true,
      // Election timeouts differ per member and per start; the runtime's randomness keeps a simulation replayable.
      random: seededRandom(Math.floor(opts.runtime.random() * 2147483647)),
    });
    this.role.term = this.node.basicStatus().hardState.term;
  }

  get id(): bigint {
    return this.opts.id;
  }

  start(): void {
    this.tickTimer = this.opts.runtime.setInterval(() => {
      this.node.tick();
      this.schedule();
    }, this.timing.tickMs);
    // A group of one elects itself at once rather than after an election timeout.
    const voters = this.voters();
    if (voters.length === 1 && voters[0] === this.opts.id) this.node.campaign();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.opts.runtime.clearInterval(this.tickTimer);
    this.failPending(true);
  }

  currentRole(): Role {
    return { ...this.role };
  }

  onRoleChange(fn: (role: Role) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Whether this member leads with a valid lease: a quorum answered it within the lease. */
  hasLease(): boolean {
    if (!this.role.isLeader || this.stopped) return false;
    const since = this.opts.runtime.now() - this.leaseMs();
    let fresh = 1;
    const voters = this.voters();
    for (const id of voters) if (id !== this.opts.id && (this.lastHeard.get(id) ?? -Infinity) >= since) fresh++;
    return fresh >= majority(voters.length);
  }

  /** The members as of the applied index (the initial list until a membership is stored). */
  private voters(): bigint[] {
    return this.opts.storage.membership?.members.map((m) => m.id) ?? this.opts.peerIds;
  }

  private leaseMs(): number {
    return (this.timing.electionTicks * this.timing.tickMs) / 2;
  }

  /** Messages from another member (already checked to come from a known member and to be for us). */
  step(from: bigint, messages: Message[]): void {
    if (this.stopped) return;
    const now = this.opts.runtime.now();
    for (const m of messages) {
      // A member only sends a message of our term to us while we lead it as an answer to us.
      if (this.role.isLeader && m.term === this.role.term) this.lastHeard.set(from, now);
      try {
        this.node.step(m);
      } catch (err) {
        this.opts.log.warn({ err, from: from.toString(), msg_type: m.msgType }, "raft refused a member's message");
      }
    }
    this.schedule();
  }

  reportUnreachable(id: bigint): void {
    this.node.reportUnreachable(id);
  }

  /** How sending a snapshot to `id` ended: the leader probes it again either way. */
  reportSnapshot(id: bigint, delivered: boolean): void {
    if (this.stopped) return;
    this.node.reportSnapshot(id, delivered ? SnapshotStatus.Finish : SnapshotStatus.Failure);
    this.schedule();
  }

  /** Appends a write to the log; resolves once this member applied it in the term it was proposed in. */
  propose(write: MetaWrite, expectedTerm?: bigint): Promise<void> {
    return this.proposeWith(expectedTerm, () => this.node.propose(Buffer.from(MetaWrite.encode(write).finish())));
  }

  /** Proposes a membership change; resolves once this member applied it in the term it was proposed in. */
  proposeConfChange(cc: ConfChange, expectedTerm: bigint): Promise<void> {
    return this.proposeWith(expectedTerm, () => {
      try {
        return this.node.proposeConfChange(cc);
      } catch (err) {
        // Raft takes one change at a time, and none before the leader committed in its term.
        if (err instanceof ErrProposalDropped && this.node.isLeader())
          throw new MembershipChangeRefusedError(err.message);
        throw err;
      }
    });
  }

  /** Snapshots the applied state and truncates the log now (between two loop turns). */
  compactNow(): Promise<void> {
    if (this.stopped) return Promise.reject(new NotLeaderError(0n, this.role.term));
    const done = new Promise<void>((resolve, reject) => this.compactionWaiters.push({ resolve, reject }));
    this.schedule();
    return done;
  }

  private proposeWith(expectedTerm: bigint | undefined, append: () => { index: bigint; term: bigint }): Promise<void> {
    // Ask the node itself, not the role of the last turn: a follower would forward the entry to
    // the leader, and the index it returns would then name some other entry of the log.
    const term = this.node.basicStatus().hardState.term;
    if (!this.node.isLeader() || this.stopped || (expectedTerm !== undefined && expectedTerm !== term)) {
      return Promise.reject(new NotLeaderError(this.role.leaderId, term));
    }
    let at: { index: bigint; term: bigint };
    try {
      at = append();
    } catch (err) {
      if (err instanceof ErrProposalDropped)
        return Promise.reject(new NotLeaderError(this.role.leaderId, this.role.term));
      return Promise.reject(err);
    }
    const done = new Promise<void>((resolve, reject) => this.pending.set(at.index, { term: at.term, resolve, reject }));
    this.schedule();
    return done;
  }

  /** Runs the loop soon; a turn already running runs once more when done. */
  private schedule(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.opts.runtime.defer(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.stopped && this.node.hasReady()) await this.turn(this.node.ready());
        if (this.compactionWaiters.length > 0 && !this.stopped) {
          const waiters = this.compactionWaiters.splice(0);
          await this.opts.storage.maybeCompact(this.opts.compaction ?? DEFAULT_COMPACTION, true);
          for (const w of waiters) w.resolve();
        }
      } while (this.again && !this.stopped);
    } catch (err) {
      for (const w of this.compactionWaiters.splice(0)) w.reject(err);
      // The member cannot persist its log: it must not go on (a member that acked an append it
      // did not store would break the quorum's promise). Stop, and tell the host (the CLI exits).
      this.opts.log.fatal({ err }, "scheduler member failed to persist its raft state; stopping the member");
      this.stop();
      this.emit({ isLeader: false, term: this.role.term, leaderId: 0n });
      this.opts.onFatal?.(err);
    } finally {
      this.running = false;
    }
  }

  private async turn(rd: Ready): Promise<void> {
    const applied: MetaWrite[] = [];
    const confChanges: ConfChange[] = [];
    let membership = rd.snapshot ? undefined : this.opts.storage.membership;
    for (const e of rd.committedEntries) {
      if (e.entryType === EntryType.EntryConfChange) {
        const cc = ConfChange.decode(e.data);
        confChanges.push(cc);
        if (membership) membership = applyConfChangeTo(membership, cc);
      } else if (e.data.length > 0) applied.push(MetaWrite.decode(e.data));
    }
    const last = rd.committedEntries.at(-1);
    await this.opts.storage.persist({
      snapshot: rd.snapshot,
      entries: rd.entries,
      hardState: rd.hardState,
      applied,
      appliedIndex: last?.index,
      membership: confChanges.length > 0 ? membership : undefined,
      sync: rd.mustSync,
    });
    // Raft's own view of the membership follows what is now on disk (a restart reads it there).
    for (const cc of confChanges) this.node.applyConfChange(cc);
    if (confChanges.length > 0 && membership) {
      this.opts.log.info(
        { members: membership.members.map((m) => `${m.name}(${m.id})`).join(",") },
        "scheduler membership changed",
      );
      this.opts.onMembershipChange?.(membership);
    }
    if (rd.snapshot) {
      const membership = this.opts.storage.membership!;
      this.opts.log.info(
        { index: rd.snapshot.metadata?.index.toString(), members: membership.members.length },
        "installed a snapshot from the scheduler leader",
      );
      this.opts.onMembershipChange?.(membership);
    }
    if (rd.messages.length > 0) this.opts.send(rd.messages);
    for (const e of rd.committedEntries) {
      const p = this.pending.get(e.index);
      if (!p) continue;
      this.pending.delete(e.index);
      if (p.term === e.term) p.resolve();
      else p.reject(new NotLeaderError(this.role.leaderId, this.role.term));
    }
    this.node.advance(rd);
    const status = this.node.basicStatus();
    const next: Role = {
      isLeader: status.softState.raftState === StateType.Leader,
      term: status.hardState.term,
      leaderId: status.softState.lead,
    };
    if (next.isLeader !== this.role.isLeader || next.term !== this.role.term || next.leaderId !== this.role.leaderId) {
      const lostLead = this.role.isLeader && (!next.isLeader || next.term !== this.role.term);
      if (next.isLeader && !this.role.isLeader) this.lastHeard.clear();
      this.emit(next);
      if (lostLead) this.failPending(true);
    }
    const snapshotAt = await this.opts.storage.maybeCompact(this.opts.compaction ?? DEFAULT_COMPACTION);
    if (snapshotAt !== undefined)
      this.opts.log.info(
        { index: snapshotAt.toString(), log_entries: this.opts.storage.logLength },
        "snapshotted the applied metadata and truncated the raft log",
      );
  }

  private emit(role: Role): void {
    this.role = role;
    this.opts.log.info(
      { term: role.term.toString(), leader: role.leaderId.toString(), is_leader: role.isLeader },
      "scheduler member role changed",
    );
    for (const fn of this.listeners) fn({ ...role });
  }

  private failPending(outcomeUnknown: boolean): void {
    for (const p of this.pending.values())
      p.reject(new NotLeaderError(this.role.leaderId, this.role.term, outcomeUnknown));
    this.pending.clear();
  }
}
