import { RawNode, seededRandom } from "../../raft/index.js";
import type { ConfChange, Message } from "../../raft/eraftpb.js";
import { MessageType } from "../../raft/eraftpb.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import type { RaftCmdRequest, RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { EngineSnapshot } from "../engine/index.js";
import type { RaftstoreConfig } from "./config.js";
import type { Runtime } from "../../util/runtime.js";
import { errorResponse, regionErrors } from "./errors.js";
import type { PeerStorage } from "./peer-storage.js";

/**
 * A write whose entry is in the log, waiting for it to apply, matched by index and term. It has
 * no deadline: only its apply (or StaleCommand, when the outcome becomes unknown) answers it.
 */
export interface Proposal {
  index: bigint;
  term: bigint;
  done(resp: RaftCmdResponse): void;
}

/** What a linearizable read gets: the region and a kv snapshot taken after `applied >= readIndex`. */
export type ReadOutcome = { error: RegionErrorPb } | { region: Region; snapshot: EngineSnapshot };

export interface ReadWaiter {
  deadline: number;
  /** The request, re-checked against the region when the read is served (a split may have happened meanwhile). */
  req: RaftCmdRequest;
  done(outcome: ReadOutcome): void;
}

/**
 * A message that may create a peer on a store that has none for its region: a (pre-)vote, or the
 * first heartbeat of a new leader (commit 0). Such messages carry the region's range.
 */
export function isInitialMessage(m: Message): boolean {
  return (
    m.msgType === MessageType.MsgRequestVote ||
    m.msgType === MessageType.MsgRequestPreVote ||
    (m.msgType === MessageType.MsgHeartbeat && m.commit === 0n)
  );
}

/**
 * One replica of one region on this store: its raft node, its storage, and the requests
 * waiting on it. All mutation happens on the store loop; the peer itself does no I/O.
 */
export class Peer {
  readonly raw: RawNode;
  proposals: Proposal[] = [];
  /** Normal commands waiting for the next turn, proposed together as one batch of entries. */
  proposeQueue: Array<{ data: Buffer; done(resp: RaftCmdResponse): void }> = [];
  /** Reads that arrived since the last turn: one ReadIndex serves them all. */
  readBatch: ReadWaiter[] = [];
  /** ReadIndex requests sent to raft, by context. */
  readsInFlight = new Map<string, ReadWaiter[]>();
  /** Reads whose read index is known, waiting for apply to reach it. */
  readsWaitingApply: Array<{ index: bigint; waiters: ReadWaiter[] }> = [];
  /** Raft log entries (from, to] to delete in the next raft batch (after a CompactLog). */
  pendingLogDelete: { from: bigint; to: bigint } | undefined;
  /** The raft state must be written in the next raft batch even if raft reports no change. */
  raftStateDirty = false;
  destroyed = false;
  /**
   * Set when this peer applied its own removal while leading. A survivor may not know yet that
   * the removal committed (in a 2-peer region it would then wait forever for this peer's vote),
   * so this peer does not vanish: it serves nothing, hands leadership to a survivor that holds
   * the removal, stays a voter, and asks the survivors until one that applied the removal
   * answers with a GC message (see retire.ts).
   */
  retiring: { index: bigint; sinceTick: number } | undefined;
  generatingSnapshot = false;
  /** Approximate region size in bytes from the last split check; undefined until measured. */
  approximateSize: number | undefined;
  /** Bytes written since the last split check. */
  sizeDiffHint = 0;
  private readSeq = 0;
  /** Peers seen in messages but not (yet) in the region meta, for addressing replies. */
  private readonly peerCache = new Map<bigint, PeerMeta>();

  constructor(
    readonly storeId: bigint,
    readonly meta: PeerMeta,
    readonly storage: PeerStorage,
    config: RaftstoreConfig,
    runtime: Runtime,
  ) {
    this.raw = new RawNode({
      id: meta.id,
      electionTick: config.raftElectionTicks,
      heartbeatTick: config.raftHeartbeatTicks,
      storage,
      applied: storage.appliedIndex,
      maxSizePerMsg: config.raftMaxSizePerMsg,
      maxInflightMsgs: config.raftMaxInflightMsgs,
      preVote: true,
      checkQuorum: true,
      // A leader that applies its own removal keeps leading until the others know the commit.
      stepDownOnRemoval: false,
      // Election timeouts differ per peer and per start; the runtime's randomness keeps a simulation replayable.
      random: seededRandom(Math.floor(runtime.random() * 2147483647)),
    });
  }

  get regionId(): bigint {
    return this.storage.region.id;
  }

  get region(): Region {
    return this.storage.region;
  }

  isLeader(): boolean {
    return this.raw.isLeader();
  }

  get term(): bigint {
    return this.raw.basicStatus().hardState.term;
  }

  /** The leader's metadata, when this peer knows who leads. */
  leader(): PeerMeta | undefined {
    const lead = this.raw.basicStatus().softState.lead;
    return lead === 0n ? undefined : this.peerById(lead);
  }

  notLeaderError(): RegionErrorPb {
    return regionErrors.notLeader(this.regionId, this.leader());
  }

  peerById(id: bigint): PeerMeta | undefined {
    return this.region.peers.find((p) => p.id === id) ?? this.peerCache.get(id);
  }

  rememberPeer(p: PeerMeta | undefined): void {
    if (p && p.id !== 0n && !this.region.peers.some((x) => x.id === p.id)) this.peerCache.set(p.id, { ...p });
  }

  /** Starts retiring (see `retiring`); answers what waits on it, as a peer that stopped leading would. */
  retire(removalIndex: bigint, tick: number): void {
    this.retiring = { index: removalIndex, sinceTick: tick };
    this.failAll(regionErrors.notLeader(this.regionId));
  }

  applyConfChange(cc: ConfChange): void {
    this.raw.applyConfChange(cc);
  }

  nextReadContext(): Buffer {
    const ctx = Buffer.allocUnsafe(16);
    ctx.writeBigUInt64BE(this.meta.id, 0);
    ctx.writeBigUInt64BE(BigInt(++this.readSeq), 8);
    return ctx;
  }

  /** Wraps a raft message in the store-to-store envelope; undefined when the target is unknown. */
  envelope(msg: Message): RaftMessage | undefined {
    const to = this.peerById(msg.to);
    if (!to) return undefined;
    const region = this.region;
    const initial = isInitialMessage(msg);
    return {
      regionId: region.id,
      fromPeer: this.meta,
      toPeer: to,
      message: msg,
      regionEpoch: region.regionEpoch,
      isTombstone: false,
      startKey: initial ? region.startKey : Buffer.alloc(0),
      endKey: initial ? region.endKey : Buffer.alloc(0),
    };
  }

  /** Answers the proposals that `(index, term)` settles: earlier ones were lost (stale), a term mismatch is stale. */
  finishProposal(index: bigint, term: bigint, resp: RaftCmdResponse): void {
    while (this.proposals.length > 0) {
      const p = this.proposals[0]!;
      if (p.index > index) return;
      this.proposals.shift();
      if (p.index === index && p.term === term) {
        p.done(resp);
        return;
      }
      p.done(errorResponse(regionErrors.staleCommand(), this.term));
    }
  }

  /**
   * Proposals from an earlier term can no longer be matched in index order (the new term's log
   * may reuse their indexes); a leader that lost and regained leadership between two turns
   * fails them before recording new ones. Their outcome is unknown to the client, as on any
   * leader change.
   */
  dropProposalsOfOtherTerms(term: bigint): void {
    if (this.proposals.length === 0 || this.proposals[this.proposals.length - 1]!.term === term) return;
    const stale = this.proposals.filter((p) => p.term !== term);
    this.proposals = this.proposals.filter((p) => p.term === term);
    for (const p of stale) p.done(errorResponse(regionErrors.staleCommand(), this.term));
  }

  /**
   * Answers every waiting request: leadership lost, peer destroyed or store stopping. Requests
   * never proposed get `error` (safe to retry); proposals already in the log get StaleCommand,
   * because their entries may still commit under another leader and the outcome is unknown.
   */
  failAll(error: RegionErrorPb): void {
    const unknown = regionErrors.staleCommand(`${error.message}: the command is in the raft log and its outcome is unknown`);
    for (const p of this.proposals.splice(0)) p.done(errorResponse(unknown, this.term));
    for (const p of this.proposeQueue.splice(0)) p.done(errorResponse(error, this.term));
    for (const w of this.readBatch.splice(0)) w.done({ error });
    for (const ws of this.readsInFlight.values()) for (const w of ws) w.done({ error });
    this.readsInFlight.clear();
    for (const { waiters } of this.readsWaitingApply.splice(0)) for (const w of waiters) w.done({ error });
  }

  /**
   * Fails reads past their deadline (a read changes nothing, so the client may simply retry).
   * Proposals are never expired: their entries are in the log and can still apply.
   */
  expireReads(now: number): void {
    const timeout = () => regionErrors.other(`region ${this.regionId}: read timed out on peer ${this.meta.id}`);
    while (this.readsWaitingApply.length > 0 && this.readsWaitingApply[0]!.waiters.every((w) => w.deadline < now)) {
      for (const w of this.readsWaitingApply.shift()!.waiters) w.done({ error: timeout() });
    }
    for (const [ctx, ws] of this.readsInFlight) {
      if (ws.every((w) => w.deadline < now)) {
        this.readsInFlight.delete(ctx);
        for (const w of ws) w.done({ error: timeout() });
      }
    }
  }
}
