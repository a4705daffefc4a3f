import type { Entry } from "../../raft/eraftpb.js";
import { MessageType } from "../../raft/eraftpb.js";
import type { Ready } from "../../raft/index.js";
import { sendableBeforePersist } from "../../raft/index.js";
import type { Region } from "../../proto/metapb.js";
import type { Runtime } from "../../util/runtime.js";
import type { Engine, WriteBatch } from "../engine/index.js";
import type { RaftTransport } from "../transport/transport.js";
import type { ApplyOutcome } from "./apply.js";
import { applyEntries } from "./apply.js";
import { readsForTurn } from "./delete-range.js";
import type { LogFetchContext } from "./log-fetch.js";
import { tendRaftLog } from "./log-fetch.js";
import type { Peer } from "./peer.js";
import { DestroyQueue } from "./peer-lifecycle.js";
import type { RegionWorker } from "./region-worker.js";
import type { RaftstoreObserver, TurnTimeline } from "./observer.js";
import { hopTrace } from "../../util/hop-trace.js";
import { traceMessage } from "../transport/trace-message.js";

/** What the store loop needs of its store. */
export interface LoopContext extends LogFetchContext {
  readonly runtime: Pick<Runtime, "defer" | "soon">;
  readonly observer: RaftstoreObserver;
  readonly kv: Engine;
  readonly transport: Pick<RaftTransport, "send" | "flush" | "writesOnFlush">;
  readonly worker: RegionWorker;
  /** Ticks since start (when a retiring peer started retiring). */
  readonly tickCount: number;
  /** Starts the peer of a region a split created. */
  createSplitPeer(parent: Peer, region: Region): Promise<void>;
  /** A leader's region changed or it became leader: tell the scheduler. */
  regionChanged(peer: Peer): void;
  /** Stops the store after a failed disk write (and tells whoever runs it). */
  fail(err: unknown): Promise<void>;
}

interface Work {
  peer: Peer;
  rd: Ready;
  /** Taken after this turn's persist (nothing of it to persist): all its messages go out after it. */
  afterPersist?: boolean;
}

interface Applied {
  peer: Peer;
  outcome: ApplyOutcome;
}

/**
 * The store loop. One turn handles the Readies of all peers together (a Ready carrying a
 * snapshot waits in the region worker until the snapshot is installed): persist (ONE raft-engine
 * batch with every peer's entries and hard state, fsynced once: group commit), send, apply (ONE
 * kv batch with every peer's committed entries), respond. While a turn awaits the disk, new
 * proposals and messages pile up for the next.
 */
export class StoreLoop {
  private scheduled: false | "soon" | "later" = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly destroys: DestroyQueue;

  constructor(private readonly ctx: LoopContext) {
    this.destroys = new DestroyQueue(ctx.worker);
  }

  /**
   * Runs a turn after the event loop's pending I/O, so that what arrives together is handled
   * together; or, with `soon` (and config.turnOnArrival) and no turn running, right after the
   * current callback: a raft message or a request reaching an idle loop does not wait behind
   * other I/O (a follower's append goes to disk as it arrives, a leader's commit applies as its
   * answer arrives). While a turn runs, arrivals wait for the next one, which starts as before.
   */
  schedule(soon = false): void {
    if (this.ctx.stopped && !this.running) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const runtime = this.ctx.runtime;
    const runSoon = soon && this.ctx.config.turnOnArrival && runtime.soon !== undefined;
    if (this.scheduled === "soon" || (this.scheduled === "later" && !runSoon)) return;
    this.scheduled = runSoon ? "soon" : "later";
    // A turn scheduled for later may run soon instead; its deferred callback then finds nothing scheduled.
    const run = () => {
      if (this.scheduled) this.run();
    };
    if (runSoon) runtime.soon!(run);
    else runtime.defer(run);
  }

  /** True while the peer's snapshot installs: it takes no ticks, messages or requests meanwhile. */
  isBusy(peer: Peer): boolean {
    return this.ctx.worker.isInstalling(peer);
  }

  /** Resolves once no turn is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  destroyLater(peer: Peer): void {
    this.destroys.later(peer);
    this.schedule();
  }

  private run(): void {
    this.scheduled = false;
    if (this.ctx.stopped) return;
    this.running = this.turn()
      .catch((err: unknown) => {
        // A failed disk write leaves raft and disk out of step: stop serving rather than guess.
        this.ctx.log.fatal({ err }, "store loop failed; stopping the store");
        void this.ctx.fail(err);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
  }

  private async turn(): Promise<void> {
    this.destroys.retry();
    const work = this.collectReadies();
    if (work.length === 0 && ![...this.ctx.peers.values()].some((p) => p.needsPersist())) return;
    const turn = this.ctx.observer.turn();
    hopTrace?.("turn.start", lastEntryIndex(work));
    // A leader's appends go out while its own write runs; it counts itself once that is durable.
    this.send(work, true);
    await this.persist(work, turn);
    for (const { peer, rd } of work) peer.persisted(rd);
    this.takeCommitted(work);
    const answers = this.send(work, false);
    if (
      answers > 0 &&
      this.ctx.config.flushAnswersBeforeApply &&
      !this.ctx.transport.writesOnFlush &&
      work.some((w) => w.rd.committedEntries.length > 0)
    )
      await new Promise<void>((resolve) => this.ctx.runtime.defer(resolve));
    const applied = await this.apply(work, turn);
    await this.respond(work, applied);
    turn.done();
  }

  /** Proposes what arrived since the last turn and takes every peer's Ready; a snapshot Ready goes to the region worker. */
  private collectReadies(): Work[] {
    // Readies whose snapshot installed in the background since the last turn go first.
    const work: Work[] = this.ctx.worker.takeInstalled();
    const taken = new Set(work.map((w) => w.peer));
    for (const peer of this.ctx.peers.values()) {
      if (taken.has(peer) || this.ctx.worker.isInstalling(peer)) continue;
      peer.proposeQueued();
      peer.sendReadIndex(() => this.ctx.kv.snapshot());
      tendRaftLog(this.ctx, peer);
      if (!peer.hasReady()) continue;
      const rd = peer.ready();
      peer.committed(rd);
      if (rd.snapshot?.metadata && rd.snapshot.metadata.index > 0n) this.ctx.worker.startInstall(peer, rd);
      else work.push({ peer, rd });
    }
    return work;
  }

  /**
   * A leader's commit may have advanced while its write ran (its own copy counted just now, or
   * an answer arrived meanwhile): those entries apply and answer in this turn rather than
   * waiting for the next, when their Ready has nothing to persist first.
   */
  private takeCommitted(work: Work[]): void {
    const n = work.length;
    for (let i = 0; i < n; i++) {
      const peer = work[i]!.peer;
      if (peer.destroyed || !peer.isLeader()) continue;
      const rd = peer.readyWithoutPersist();
      if (!rd) continue;
      peer.committed(rd);
      work.push({ peer, rd, afterPersist: true });
    }
  }

  /** Every peer's log entries and hard state in one raft batch, synced when any Ready asks. */
  private async persist(work: Work[], turn: TurnTimeline): Promise<void> {
    const raftWb = this.ctx.raftEngine.newBatch();
    const readies = new Map(work.map((w) => [w.peer, w.rd]));
    // Peers without a Ready may still have a log deletion or raft state to write (an installed
    // snapshot's old log, a compaction, a new peer); a deletion lands before the same peer's
    // appends, or a later turn would delete entries appended (and acknowledged) now.
    for (const peer of this.ctx.peers.values())
      if (!readies.has(peer) && peer.needsPersist()) peer.persist(raftWb, undefined);
    let entries = 0;
    for (const { peer, rd } of work) {
      peer.persist(raftWb, rd);
      entries += rd.entries.length;
    }
    const sync = work.some((w) => w.rd.mustSync) && !this.ctx.config.deliberateBugs?.has("skip-raft-fsync");
    turn.persistStarted();
    hopTrace?.("persist.start", lastEntryIndex(work));
    if (raftWb.length === 0) {
      discard(raftWb, this.ctx);
      return turn.persisted(work.length, 0, false);
    }
    await raftWb.write(sync);
    hopTrace?.(sync ? "persist.synced" : "persist.written", lastEntryIndex(work));
    turn.persisted(work.length, entries, sync);
  }

  /**
   * Before the persist, only what may leave before it (a leader's appends); after it, the rest,
   * now that what they promise is durable. Returns how many answers to other peers' messages went.
   */
  private send(work: Work[], beforePersist: boolean): number {
    let sent = 0;
    let answers = 0;
    for (const { peer, rd, afterPersist } of work) {
      if (afterPersist && beforePersist) continue;
      for (const m of rd.messages) {
        if (!afterPersist && sendableBeforePersist(rd, m) !== beforePersist) continue;
        const env = peer.envelope(m);
        if (hopTrace) traceMessage("send", m);
        if (env) this.ctx.transport.send(env);
        sent++;
        if (ANSWERS.has(m.msgType)) answers++;
      }
    }
    if (sent > 0 || !beforePersist) this.ctx.transport.flush();
    return answers;
  }

  /** Every peer's committed entries in one kv batch, with their apply states. */
  private async apply(work: Work[], turn: TurnTimeline): Promise<Applied[]> {
    const { rangeKeys, reads } = await readsForTurn(
      this.ctx.kv,
      [...committedByPeer(work)]
        .filter(([peer]) => !peer.retiring)
        .map(([peer, entries]) => ({ region: peer.region, appliedIndex: peer.storage.appliedIndex, entries })),
    );
    if (reads && this.ctx.config.deliberateBugs?.has("cas-compares-turn-start")) reads.wrote = () => undefined;
    const kvWb = this.ctx.kv.newBatch();
    const applied: Applied[] = [];
    const hasInitializedRegion = (id: bigint) => this.ctx.peers.get(id)?.storage.isInitialized() ?? false;
    for (const { peer, rd } of work) {
      if (rd.committedEntries.length === 0 || peer.retiring) continue; // a retiring peer applies nothing after its removal
      const outcome = applyEntries(peer.applyTarget(hasInitializedRegion), rd.committedEntries, kvWb, rangeKeys, reads);
      peer.size.wrote(outcome.writtenBytes);
      applied.push({ peer, outcome });
    }
    turn.applyStarted();
    if (hopTrace && applied.length > 0) hopTrace("apply.start", lastCommittedIndex(work));
    if (kvWb.length === 0) discard(kvWb, this.ctx);
    else {
      const written = kvWb.write(applied.some((a) => a.outcome.needsSync));
      // Plain writes are answered while their batch is written: every read of this store is
      // served in a later turn or after this write (serveReads, lease and replica reads), and a
      // stale read waits for the safe ts, which moves only after it; a crash before the write
      // lands re-applies the committed entries. Splits and membership changes wait for it.
      if (this.ctx.config.answerBeforeApplyWrite)
        for (const a of applied) if (isPlainOutcome(a.outcome)) a.peer.answer(a.outcome);
      await written;
    }
    if (hopTrace && applied.length > 0) hopTrace("apply.done", lastCommittedIndex(work));
    turn.applied(work.reduce((n, w) => n + (w.peer.retiring ? 0 : w.rd.committedEntries.length), 0));
    return applied;
  }

  /** Answers what the apply and the Readies settled, then advances raft. */
  private async respond(work: Work[], applied: Applied[]): Promise<void> {
    for (const { peer, outcome } of applied) await this.afterApply(peer, outcome);
    for (const { peer, rd } of work) this.afterReady(peer, rd);
    for (const { peer, outcome } of applied) if (outcome.removedSelf) this.removeSelf(peer);
    for (const peer of this.ctx.peers.values()) if (peer.wantsSnapshotGenerated()) this.ctx.worker.generate(peer);
    for (const peer of this.ctx.peers.values()) if (peer.hasReady()) this.again = true;
  }

  private async afterApply(peer: Peer, outcome: ApplyOutcome): Promise<void> {
    peer.applied(outcome);
    for (const region of outcome.splitRegions) await this.ctx.createSplitPeer(peer, region);
    if ((outcome.confChanged || outcome.splitRegions.length > 0) && peer.isLeader()) {
      this.ctx.regionChanged(peer);
      // The followers apply it now, not at the next heartbeat: the new region's peers start
      // there, and a membership change should not wait (config.lazyCommitBroadcast).
      peer.raw.commitBroadcast();
    }
  }

  private afterReady(peer: Peer, rd: Ready): void {
    if (rd.softState && !peer.isLeader()) peer.failAll(peer.notLeaderError());
    // A new leader tells the scheduler at once, so clients find it without waiting a heartbeat period.
    if (rd.softState && peer.isLeader()) this.ctx.regionChanged(peer);
    peer.serveReads(rd, () => this.ctx.kv.snapshot());
    if (!peer.destroyed) peer.advance(rd);
  }

  /** A leader hands the commit of its own removal to the others before it goes (Peer.retiring). */
  private removeSelf(peer: Peer): void {
    if (peer.isLeader() && peer.region.peers.length > 0) peer.retire(peer.storage.appliedIndex, this.ctx.tickCount);
    else this.destroys.destroy(peer);
  }
}

/** An apply that changed no region and no membership: its answers need no more than the batch. */
function isPlainOutcome(o: ApplyOutcome): boolean {
  return !o.confChanged && !o.removedSelf && o.splitRegions.length === 0;
}

/** Each peer's committed entries of the turn, in apply order (a leader may have two Readies in it). */
/** Messages that answer another peer's: someone waits for them. */
const ANSWERS = new Set<MessageType>([
  MessageType.MsgAppendResponse,
  MessageType.MsgHeartbeatResponse,
  MessageType.MsgRequestVoteResponse,
  MessageType.MsgRequestPreVoteResponse,
  MessageType.MsgReadIndexResponse,
]);

function committedByPeer(work: Work[]): Map<Peer, Entry[]> {
  const byPeer = new Map<Peer, Entry[]>();
  for (const { peer, rd } of work) {
    if (rd.committedEntries.length === 0) continue;
    const entries = byPeer.get(peer);
    if (entries) entries.push(...rd.committedEntries);
    else byPeer.set(peer, [...rd.committedEntries]);
  }
  return byPeer;
}

/** The highest log index among the Readies' new entries (for the hop trace). */
function lastEntryIndex(work: readonly Work[]): bigint | undefined {
  let last: bigint | undefined;
  for (const { rd } of work) {
    const e = rd.entries[rd.entries.length - 1];
    if (e && (last === undefined || e.index > last)) last = e.index;
  }
  return last;
}

/** The highest committed index among the Readies (for the hop trace). */
function lastCommittedIndex(work: readonly Work[]): bigint | undefined {
  let last: bigint | undefined;
  for (const { rd } of work) {
    const e = rd.committedEntries[rd.committedEntries.length - 1];
    if (e && (last === undefined || e.index > last)) last = e.index;
  }
  return last;
}

/** Releases an empty batch without waiting for it: there is nothing to wait for, and a wait is a turn of the event loop. */
function discard(wb: WriteBatch, ctx: LoopContext): void {
  wb.write(false).catch((err: unknown) => ctx.log.warn({ err }, "closing an empty write batch failed"));
}
