import type { Ready } from "../../raft/index.js";
import { ErrProposalDropped, RawNode, seededRandom } from "../../raft/index.js";
import type { Message } from "../../raft/eraftpb.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import type { RaftRequestHeader } from "../../proto/raft_cmdpb.js";
import type { RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { EngineSnapshot, WriteBatch } from "../engine/index.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import type { ApplyOutcome, ApplyTarget } from "./apply.js";
import type { DeliberateBugs } from "../../util/deliberate-bugs.js";
import type { RaftstoreConfig } from "./config.js";
import { leaderLeaseMs } from "./config.js";
import { PeerLease } from "./lease-reads.js";
import { checkKeysInRegion, checkRegionEpoch } from "./epoch.js";
import { errorResponse, regionErrors } from "./errors.js";
import type { PeerStorage } from "./peer-storage.js";
import { asBuffer } from "./peer-storage.js";
import type { PeerMsg } from "./peer-msg.js";
import { inspectRequest } from "./peer-msg.js";
import { PeerDirectory } from "./peer-directory.js";
import type { AdminPeer } from "./peer-admin.js";
import { proposeConfChange, transferLeader } from "./peer-admin.js";
import { RegionSizeTracker } from "./split-size.js";
import { Proposals } from "./proposals.js";
import { ReadQueue } from "./reads.js";
import { replicaReadRefusal, sendFollowerReadIndex } from "./replica-reads.js";
import { SafeTs } from "./safe-ts.js";
import { PeerLogWrites } from "./peer-log-writes.js";
import { traceMessage } from "../transport/trace-message.js";
import type { RaftstoreObserver } from "./observer.js";
import { NO_OBSERVER } from "./observer.js";
import { hopTrace } from "../../util/hop-trace.js";

export type { Proposal } from "./proposals.js";
export type { ReadOutcome, ReadWaiter } from "./reads.js";
export { inspectRequest, isInitialMessage, type PeerMsg, type RequestPolicy } from "./peer-msg.js";

/** What a peer takes from its store at creation. */
export interface PeerEnv {
  config: RaftstoreConfig;
  runtime: Runtime;
  log: Logger;
  /** Wakes the store loop: the peer has something for its next turn (`soon`: see StoreLoop.schedule). */
  wake(soon?: boolean): void;
  /** Told each write's stages (metrics, slow log); default: nobody. */
  observer?: RaftstoreObserver;
}

/**
 * One replica of one region on this store: its raft node, its storage, and the requests
 * waiting on it. Everything it receives comes through `handle`; the store loop drives its
 * Readies. All mutation happens on the store loop; the peer itself does no I/O.
 */
export class Peer {
  readonly raw: RawNode;
  private readonly proposals = new Proposals();
  private readonly reads: ReadQueue;
  /** Up to which ts this replica's applied data is complete, for stale reads (safe-ts.ts). */
  readonly safeTs = new SafeTs();
  private readonly directory: PeerDirectory;
  /** The region's size as the split checker last measured it, and the bytes written since. */
  readonly size = new RegionSizeTracker();
  private retirement: { index: bigint; sinceTick: number } | undefined;
  private readonly log: Logger;
  private readonly wake: (soon?: boolean) => void;
  private readonly observer: RaftstoreObserver;
  /** Set when lease reads are on (config.leaseReads). */
  private readonly lease: PeerLease | undefined;

  private readonly logWrites: PeerLogWrites;
  private left = false;
  private generatingSnapshot = false;
  /** Test-only safety switches turned off (util/deliberate-bugs.ts). */
  private readonly deliberateBugs: DeliberateBugs | undefined;

  constructor(
    readonly storeId: bigint,
    readonly meta: PeerMeta,
    readonly storage: PeerStorage,
    env: PeerEnv,
  ) {
    const config = env.config;
    this.deliberateBugs = config.deliberateBugs;
    this.directory = new PeerDirectory(meta, () => this.storage.region);
    this.logWrites = new PeerLogWrites(storage);
    this.log = env.log;
    this.wake = env.wake;
    this.observer = env.observer ?? NO_OBSERVER;
    const random32 = () => BigInt(Math.floor(env.runtime.random() * 2 ** 32));
    this.reads = new ReadQueue(meta.id, () => this.observer.read(this.regionId), (random32() << 32n) | random32());
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
      lazyCommitBroadcast: config.lazyCommitBroadcast,
      // Election timeouts differ per peer and per start; the runtime's randomness keeps a simulation replayable.
      random: seededRandom(Math.floor(env.runtime.random() * 2147483647)),
    });
    if (config.leaseReads) this.lease = new PeerLease(this.raw, env.runtime, leaderLeaseMs(config));
  }

  // ---- the door ----

  /** Takes one message; the peer wakes the store loop when the message left work for its next turn. */
  handle(msg: PeerMsg): void {
    switch (msg.type) {
      case "raftMessage":
        if (hopTrace) traceMessage("step", msg.message);
        this.leaseAround(() => this.step(msg.from, msg.message));
        return this.wake(true);
      case "command":
      case "read":
        return this.onRequest(msg);
      case "tick":
        this.lease?.tick();
        this.leaseAround(() => this.raw.tick());
        return this.expireReads(msg.now);
      case "snapshotStatus":
        this.raw.reportSnapshot(msg.toPeerId, msg.status);
        return this.wake();
      case "unreachable":
        return this.raw.reportUnreachable(msg.toPeerId);
      case "entriesFetched":
        this.storage.onFetched(msg.lo, msg.entries);
        this.raw.onEntriesFetched();
        return this.wake();
      case "campaign":
        return this.leaseAround(() => this.raw.campaign());
      case "destroy":
        this.left = true;
        return this.failAll(regionErrors.regionNotFound(this.regionId));
    }
  }

  private step(from: PeerMeta, m: Message): void {
    this.directory.remember(from);
    if (this.lease?.refusesVote(m)) return;
    try {
      this.raw.step(m);
    } catch (err) {
      this.log.debug({ err, region_id: String(this.regionId) }, "raft refused a message");
    }
  }

  /** The peer's checks (it leads, at the request's epoch), then the request's policy (`inspectRequest`). */
  private onRequest(msg: Extract<PeerMsg, { type: "command" | "read" }>): void {
    const replica = msg.type === "read" && msg.replica === true && !this.isLeader();
    const refusal =
      (replica ? replicaReadRefusal(this, this.retirement !== undefined) : this.refusal(msg.req.header)) ??
      checkRegionEpoch(msg.req, this.region);
    if (msg.type === "read") {
      if (refusal) return msg.done({ error: refusal });
      this.reads.add({ deadline: msg.deadline, req: msg.req, replica: msg.replica, done: msg.done });
      return this.wake();
    }
    const done = msg.done;
    const keyErr = refusal ?? checkKeysInRegion(msg.req, this.region);
    if (keyErr) return done(errorResponse(keyErr, this.term));
    try {
      switch (inspectRequest(msg)) {
        case "transferLeader":
          return transferLeader(this.admin(), msg.req, done);
        case "proposeConfChange":
          return proposeConfChange(this.admin(), msg.req, done);
        default:
          // Batched with the other commands of this turn: one append message per follower.
          this.queueWrite(msg.req, done);
          return this.wake(true);
      }
    } catch (err) {
      done(errorResponse(this.droppedError(err), this.term));
    }
  }

  private queueWrite(req: RaftCmdRequest, done: (resp: RaftCmdResponse) => void): void {
    hopTrace?.("peer.queued");
    const timeline = this.observer.write(this.regionId);
    this.proposals.queue({
      data: asBuffer(RaftCmdRequest.encode(req).finish()),
      timeline,
      done: (resp) => {
        const error = resp.header?.error;
        timeline.answered(!error ? "applied" : error.staleCommand ? "stale" : "refused");
        done(resp);
      },
    });
  }

  /** Raft committed entries up to the last one of this Ready: tells the writes there. */
  committed(rd: Ready): void {
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last) this.proposals.committedUpTo(last.index);
  }

  /** Why this peer does not take a request addressed to its region, if it does not. */
  private refusal(header: RaftRequestHeader | undefined): RegionErrorPb | undefined {
    if (this.retirement) return regionErrors.notLeader(this.regionId); // removed: leads only to hand over
    if (!this.isLeader()) return this.notLeaderError();
    if (header?.term && header.term !== 0n && this.term > header.term + 1n) return regionErrors.staleCommand();
    return undefined;
  }

  private admin(): AdminPeer {
    return {
      raw: this.raw,
      lease: this.lease,
      meta: this.meta,
      region: this.region,
      term: this.term,
      proposals: this.proposals,
      remember: (p) => this.directory.remember(p),
      wake: () => this.wake(),
    };
  }

  /** Raft dropped a proposal (no leader, a transfer under way...): a leader says why, a follower names the leader. */
  private droppedError(err: unknown): RegionErrorPb {
    if (!(err instanceof ErrProposalDropped)) throw err;
    return this.isLeader() ? regionErrors.other(err.message) : this.notLeaderError();
  }

  // ---- what the store loop does with the peer each turn ----

  /** Proposes the commands queued since the last turn as one batch of entries. */
  proposeQueued(): void {
    const batch = this.proposals.takeQueued();
    if (batch.length === 0) return;
    const proposedAt = this.lease?.now();
    try {
      const { firstIndex, term } = this.raw.proposeBatch(batch.map((p) => p.data));
      this.proposals.inTheLog(firstIndex, term, batch);
      hopTrace?.("propose", firstIndex + BigInt(batch.length - 1));
      if (proposedAt !== undefined) this.lease!.proposed(term, firstIndex + BigInt(batch.length - 1), proposedAt);
    } catch (err) {
      const error = this.droppedError(err);
      for (const p of batch) p.done(errorResponse(error, this.term));
    }
  }

  /** Serves the reads that arrived since the last turn by the lease, or sends them to raft as one ReadIndex. */
  sendReadIndex(takeSnapshot: () => EngineSnapshot): void {
    const batch = this.reads.takeArrived();
    if (batch.length === 0) return;
    if (!this.isLeader()) return sendFollowerReadIndex(this.raw, this.reads, batch, this.notLeaderError());
    if (this.deliberateBugs?.has("read-without-read-index"))
      return void this.reads.confirmed([{ index: 0n, requestCtx: this.reads.sent(batch) }]);
    if (this.lease?.serve(batch, this.reads, this.storage.appliedIndex, this.region, takeSnapshot)) return;
    this.raw.readIndex(this.reads.sent(batch, this.lease?.stamp()));
  }

  hasReady(): boolean {
    return this.raw.hasReady();
  }

  ready(): Ready {
    const rd = this.raw.ready();
    this.lease?.ready(rd);
    return rd;
  }

  /** See RawNode.readyWithoutPersist. */
  readyWithoutPersist(): Ready | undefined {
    const rd = this.raw.readyWithoutPersist();
    if (rd) this.lease?.ready(rd);
    return rd;
  }

  /** rd's entries are durable: a leader counts its own copy now, before the apply. */
  persisted(rd: Ready): void {
    if (!this.left) this.raw.persisted(rd);
  }

  advance(rd: Ready): void {
    this.raw.advance(rd);
  }

  /** True when the next raft batch must carry something for this peer even without a Ready. */
  needsPersist(): boolean {
    return this.logWrites.pending();
  }

  /** Puts this peer's log deletions, new entries and raft state (as `rd` changes them) in the raft batch. */
  persist(raftWb: WriteBatch, rd: Ready | undefined): void {
    this.logWrites.write(raftWb, rd);
  }

  /** The raft log entries (from, to] go in the next raft batch, with the raft state. */
  deleteLogLater(range: { from: bigint; to: bigint }): void {
    this.logWrites.deleteLater(range);
  }

  /** Set once the peer left this store (the "destroy" message). */
  get destroyed(): boolean {
    return this.left;
  }

  /** The region worker is generating (true) or done generating (false) this peer's snapshot. */
  snapshotGeneration(running: boolean): void {
    this.generatingSnapshot = running;
  }

  /** The raft state goes in the next raft batch even if raft reports no change (a new peer). */
  persistRaftStateNextTurn(): void {
    this.logWrites.stateNextTurn();
  }

  /** What apply needs of this peer; `hasInitializedRegion` answers for the whole store. */
  applyTarget(hasInitializedRegion: (regionId: bigint) => boolean): ApplyTarget {
    const observer = this.observer;
    const regionId = this.regionId;
    return {
      storage: this.storage,
      selfPeerId: this.meta.id,
      applyConfChange: (cc) => this.raw.applyConfChange(cc),
      hasInitializedRegion,
      onApplied:
        observer.applied && ((entry, raw) => observer.applied!(this.storeId, this.meta.id, regionId, entry, raw)),
    };
  }

  /** Answers the proposals an apply settled (see StoreLoop.apply for when that may precede the kv write). */
  answer(outcome: ApplyOutcome): void {
    for (const { index, term, resp } of outcome.responses) this.proposals.finish(index, term, resp, this.term);
    outcome.responses = [];
  }

  /** The apply's kv batch is written: answers what is left to answer, keeps its log compaction for the next raft batch. */
  applied(outcome: ApplyOutcome): void {
    this.lease?.applied(outcome);
    if (outcome.resolvedTs !== undefined) this.safeTs.advance(outcome.resolvedTs);
    this.answer(outcome);
    if (outcome.compacted) {
      this.observer.logCompacted(Number(outcome.compacted.to - outcome.compacted.from));
      this.deleteLogLater(outcome.compacted);
    }
  }

  /** Raft confirmed read indexes in a Ready: serve every read whose index is now applied. */
  serveReads(rd: Ready, takeSnapshot: () => EngineSnapshot): void {
    const stamps = this.reads.confirmed(rd.readStates);
    this.lease?.confirmed(stamps);
    this.reads.serve(this.storage.appliedIndex, this.region, takeSnapshot);
  }

  // ---- what the peer tells about itself ----

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
    return this.directory.peerById(id);
  }

  /**
   * Set when this peer applied its own removal while leading. A survivor may not know yet that
   * the removal committed (in a 2-peer region it would then wait forever for this peer's vote),
   * so this peer does not vanish: it serves nothing, hands leadership to a survivor that holds
   * the removal, stays a voter, and asks the survivors until one that applied the removal
   * answers with a GC message (see retire.ts).
   */
  get retiring(): Readonly<{ index: bigint; sinceTick: number }> | undefined {
    return this.retirement;
  }

  /** Starts retiring (see `retiring`); answers what waits on it, as a peer that stopped leading would. */
  retire(removalIndex: bigint, tick: number): void {
    this.retirement = { index: removalIndex, sinceTick: tick };
    this.failAll(regionErrors.notLeader(this.regionId));
  }

  /** True when raft asked for a snapshot and none is being generated. */
  wantsSnapshotGenerated(): boolean {
    return this.storage.snapshotRequested && !this.generatingSnapshot;
  }

  /** Wraps a raft message in the store-to-store envelope; undefined when the target is unknown. */
  envelope(msg: Message): RaftMessage | undefined {
    return this.directory.envelope(msg);
  }

  /**
   * Answers every waiting request: leadership lost, peer destroyed or store stopping. Requests
   * never proposed get `error` (safe to retry); proposals already in the log get StaleCommand,
   * because their entries may still commit under another leader and the outcome is unknown.
   */
  failAll(error: RegionErrorPb): void {
    this.proposals.failAll(error, this.term);
    this.reads.failAll(error);
  }

  /** This peer was loaded at its store's start: see PeerLease.holdVotesAfterRestart. */
  restarted(electionTimeoutMs: number): void {
    this.lease?.holdVotesAfterRestart(electionTimeoutMs);
  }

  /** Runs a raft step, tick or campaign; the lease learns if it made this peer leader. */
  private leaseAround(step: () => void): void {
    if (this.lease) this.lease.around(step);
    else step();
  }

  /** Fails reads past their deadline. Proposals are never expired: their entries are in the log and can still apply. */
  private expireReads(now: number): void {
    this.reads.expire(now, () => regionErrors.other(`region ${this.regionId}: read timed out on peer ${this.meta.id}`));
  }
}
