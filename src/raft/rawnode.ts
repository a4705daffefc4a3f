// The application's handle on a Raft: feeds it ticks and messages and collects its output as a
// Ready. The application persists Ready.entries/hardState/snapshot, then sends the messages,
// applies committedEntries, and calls advance(rd).
import type { ConfState, Entry, HardState, Message, Snapshot } from "./eraftpb.js";
import { ConfChange, ConfChangeType, EntryType, MessageType } from "./eraftpb.js";
import { ErrInvalidConfig, ErrStepLocalMsg } from "./errors.js";
import { Raft } from "./raft.js";
import { bcastAppend, ownEntriesPersisted, sendFetchedEntries } from "./raft-leader.js";
import type { RaftConfig, ReadState, SoftState } from "./raft-types.js";
import { StateType } from "./raft-types.js";
import { hardStateEqual, isEmptyHardState, isLocalMsg, newEntry, newMessage } from "./util.js";

export interface Ready {
  /** Only when changed since the last Ready. */
  softState?: SoftState;
  /** Only when changed since the last Ready; persist before sending messages. */
  hardState?: HardState;
  /** Entries to append to stable storage (may overwrite a suffix). */
  entries: Entry[];
  /** Snapshot to install in storage and the state machine. */
  snapshot?: Snapshot;
  /** Entries to apply. */
  committedEntries: Entry[];
  /** Messages to send after persisting entries and hardState. */
  messages: Message[];
  readStates: ReadState[];
  /** Whether the persisted write must be synced (entries, term or vote changed). */
  mustSync: boolean;
  /**
   * True when this Ready changes neither term nor vote: its MsgAppend messages (only a leader
   * sends them) may then go out while its entries are being persisted (see sendableBeforePersist).
   */
  termAndVoteDurable: boolean;
}

/**
 * Whether `m` of `rd` may be sent before rd's entries and hard state are durable: only a
 * leader's append, at a term and vote already on disk (Raft thesis 10.2.1). A vote, a vote
 * response or an append response promises something a crash must not lose, so it waits.
 */
export function sendableBeforePersist(rd: Ready, m: Message): boolean {
  return rd.termAndVoteDurable && m.msgType === MessageType.MsgAppend;
}

export enum SnapshotStatus {
  Finish,
  Failure,
}

export interface PeerProgress {
  match: bigint;
  next: bigint;
  state: string;
}

/** What any node knows about itself, without the leader's per-follower view. */
export interface BasicStatus {
  id: bigint;
  hardState: HardState;
  softState: SoftState;
  applied: bigint;
  /** Target of a leader transfer in progress, 0 if none. */
  leadTransferee: bigint;
}

export interface Status extends BasicStatus {
  /** The leader's view of each member's log; empty on a non-leader. */
  progress: Map<bigint, PeerProgress>;
}

// Set by RawNode's static block, which alone may read the protected core.
let coreOf: (rn: RawNode) => Raft;

export class RawNode {
  /** The core is the library's own business; tests reach it through the testing entry. */
  protected readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  static {
    coreOf = (rn) => rn.raft;
  }

  tick(): void {
    this.raft.tick();
  }

  campaign(): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgHup }));
  }

  /** Appends data to the leader's log; throws ErrProposalDropped if this node cannot. */
  propose(data: Buffer): { index: bigint; term: bigint } {
    this.raft.step(newMessage({ msgType: MessageType.MsgPropose, from: this.raft.id, entries: [newEntry({ data })] }));
    return { index: this.raft.raftLog.lastIndex(), term: this.raft.term };
  }

  /**
   * Appends several entries in one step, so followers get them in one append message rather
   * than one message each. Returns the index of the first; the rest follow in order.
   */
  proposeBatch(datas: Buffer[]): { firstIndex: bigint; term: bigint } {
    if (datas.length === 0) throw new ErrInvalidConfig("proposeBatch needs at least one entry");
    const first = this.raft.raftLog.lastIndex() + 1n;
    this.raft.step(
      newMessage({
        msgType: MessageType.MsgPropose,
        from: this.raft.id,
        entries: datas.map((data) => newEntry({ data })),
      }),
    );
    return { firstIndex: first, term: this.raft.term };
  }

  /** Proposes a membership change; only one may be pending (unapplied) at a time. */
  proposeConfChange(cc: ConfChange): { index: bigint; term: bigint } {
    const data = Buffer.from(ConfChange.encode(cc).finish());
    const entry = newEntry({ entryType: EntryType.EntryConfChange, data });
    this.raft.step(newMessage({ msgType: MessageType.MsgPropose, from: this.raft.id, entries: [entry] }));
    return { index: this.raft.raftLog.lastIndex(), term: this.raft.term };
  }

  /** Called by the application when it applies a conf-change entry; returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    if (cc.nodeId !== 0n) {
      switch (cc.changeType) {
        case ConfChangeType.AddNode:
          this.raft.addNode(cc.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          this.raft.removeNode(cc.nodeId);
          break;
        default:
          throw new ErrInvalidConfig(`unknown conf change type ${cc.changeType}`);
      }
    }
    return this.raft.confState();
  }

  /** Steps a message from another node. */
  step(m: Message): void {
    if (isLocalMsg(m.msgType)) throw new ErrStepLocalMsg(m.msgType);
    this.raft.step(m);
  }

  /**
   * A leader sends its commit index to every follower now (an append without entries where it
   * has none to send): with lazyCommitBroadcast, for a commit the followers should apply soon
   * (a split, a membership change). A no-op on a follower.
   */
  commitBroadcast(): void {
    if (this.raft.state === StateType.Leader) bcastAppend(this.raft);
  }

  transferLeader(transferee: bigint): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgTransferLeader, from: transferee }));
  }

  /** Requests a linearizable read point; the answer is a ReadState with ctx in a later Ready. */
  readIndex(ctx: Buffer): void {
    if (ctx.length === 0) throw new ErrInvalidConfig("readIndex needs a non-empty context");
    this.raft.step(newMessage({ msgType: MessageType.MsgReadIndex, context: ctx }));
  }

  private softStateChanged(): boolean {
    const s = this.prevSoftState;
    return s.lead !== this.raft.lead || s.raftState !== this.raft.state;
  }

  private hardStateChanged(): boolean {
    const hs = this.raft.hardState();
    return !isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState);
  }

  hasReady(): boolean {
    const r = this.raft;
    return (
      this.softStateChanged() ||
      this.hardStateChanged() ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.raftLog.unstable.nextSnapshot() !== undefined ||
      r.raftLog.unstable.nextEntries().length > 0 ||
      r.raftLog.hasNextCommittedEnts()
    );
  }

  /**
   * The next Ready, only when it holds nothing to persist (no entries, snapshot, term or vote):
   * committed entries, messages and read states a caller can handle in the same turn as the
   * previous Ready, without another write first. Undefined otherwise.
   */
  readyWithoutPersist(): Ready | undefined {
    const r = this.raft;
    const unstable = r.raftLog.unstable;
    if (unstable.nextEntries().length > 0 || unstable.nextSnapshot() !== undefined) return undefined;
    if (r.term !== this.prevHardState.term || r.vote !== this.prevHardState.vote) return undefined;
    return this.hasReady() ? this.ready() : undefined;
  }

  /**
   * Collects the pending output and marks it handed out, so a later ready() before advance()
   * does not repeat it.
   */
  ready(): Ready {
    const r = this.raft;
    const log = r.raftLog;
    const rd: Ready = {
      entries: log.unstable.nextEntries(),
      committedEntries: log.nextCommittedEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
      termAndVoteDurable: true,
    };
    const snap = log.unstable.nextSnapshot();
    if (snap) rd.snapshot = snap;
    if (this.softStateChanged()) {
      rd.softState = r.softState();
      this.prevSoftState = rd.softState;
    }
    const hs = r.hardState();
    if (this.hardStateChanged()) {
      rd.hardState = hs;
      rd.mustSync = hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
      rd.termAndVoteDurable = !rd.mustSync;
      this.prevHardState = hs;
    }
    if (rd.entries.length > 0) rd.mustSync = true;
    r.msgs = [];
    r.readStates = [];
    log.unstable.acceptInProgress();
    if (rd.committedEntries.length > 0) {
      log.acceptApplying(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    return rd;
  }

  /**
   * rd's entries and hard state are durable: a leader now counts its own copy toward a commit
   * (the commit shows in the next Ready). Call it as soon as the write completes, before
   * advance(rd), so a commit need not wait for the apply; advance(rd) implies it.
   */
  persisted(rd: Ready): void {
    if (rd.entries.length === 0) return;
    const last = rd.entries[rd.entries.length - 1]!;
    this.raft.raftLog.stableTo(last.index, last.term);
    if (this.raft.state === StateType.Leader) ownEntriesPersisted(this.raft, this.raft.raftLog.stabled);
  }

  /** Acknowledges exactly what rd held: its entries/snapshot are persisted and entries applied. */
  advance(rd: Ready): void {
    const log = this.raft.raftLog;
    this.persisted(rd);
    if (rd.snapshot?.metadata) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.committedEntries.length > 0) {
      log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
  }

  /**
   * Storage finished reading entries it answered ErrLogTemporarilyUnavailable for: the leader
   * sends them now (the next ready() carries the messages).
   */
  onEntriesFetched(): void {
    if (this.raft.state === StateType.Leader) sendFetchedEntries(this.raft);
  }

  /** A message to `id` could not be delivered; a leader stops pipelining to it. */
  reportUnreachable(id: bigint): void {
    this.raft.step(newMessage({ msgType: MessageType.MsgUnreachable, from: id }));
  }

  /** How a snapshot sent to `id` ended; a leader then probes it. */
  reportSnapshot(id: bigint, status: SnapshotStatus): void {
    const reject = status === SnapshotStatus.Failure;
    this.raft.step(newMessage({ msgType: MessageType.MsgSnapshotStatus, from: id, reject }));
  }

  isLeader(): boolean {
    return this.raft.state === StateType.Leader;
  }

  basicStatus(): BasicStatus {
    const r = this.raft;
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
    };
  }

  /** A copy of the leader's view of each member's log (itself included); empty on a non-leader. */
  progress(): Map<bigint, PeerProgress> {
    const progress = new Map<bigint, PeerProgress>();
    if (this.isLeader()) {
      for (const [id, pr] of this.raft.prs) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    }
    return progress;
  }

  status(): Status {
    return { ...this.basicStatus(), progress: this.progress() };
  }
}

/** The Raft behind a RawNode, for the testing entry (index.ts does not export it). */
export function raftOf(rn: RawNode): Raft {
  return coreOf(rn);
}
