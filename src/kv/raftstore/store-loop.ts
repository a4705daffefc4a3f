import { ErrProposalDropped, type Ready } from "../../raft/index.js";
import type { Region } from "../../proto/metapb.js";
import type { EngineSnapshot } from "../engine/index.js";
import { applyEntries, type ApplyOutcome } from "./apply.js";
import { errorResponse, regionErrors } from "./errors.js";
import { checkRegionEpoch } from "./epoch.js";
import { RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM } from "./keys.js";
import { tendRaftLog } from "./log-fetch.js";
import { Peer } from "./peer.js";
import { initialRaftState, PeerStorage } from "./peer-storage.js";
import type { Store } from "./store.js";
import { persistedHardState } from "./inbox.js";
import { mergeRange, RegionWorker } from "./region-worker.js";

/**
 * The store loop. One turn handles the Readies of all peers together (a Ready carrying a
 * snapshot waits in the region worker until the snapshot is installed): ONE raft-engine batch
 * with every peer's entries and hard state (fsynced once: group commit), then messages, then ONE kv batch applying every peer's committed entries, then the
 * callbacks. While a turn awaits the disk, new proposals and messages pile up for the next.
 */
export class StoreLoop {
  private scheduled = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly toDestroy = new Set<Peer>();

  readonly worker: RegionWorker;

  constructor(private readonly store: Store) {
    this.worker = new RegionWorker(store, () => this.schedule());
  }

  schedule(): void {
    if (this.store.stopped && !this.running) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.store.runtime.defer(() => this.run());
  }

  /** Resolves once background work (snapshot install and generation, peer destroy) has finished. */
  backgroundIdle(): Promise<void> {
    return this.worker.idle();
  }

  /** True while the peer's snapshot installs: it takes no ticks, messages or requests meanwhile. */
  isBusy(peer: Peer): boolean {
    return this.worker.isInstalling(peer);
  }

  /** Resolves once no turn is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  destroyLater(peer: Peer): void {
    this.toDestroy.add(peer);
    this.schedule();
  }

  private run(): void {
    this.scheduled = false;
    if (this.store.stopped) return;
    this.running = this.turn()
      .catch((err: unknown) => {
        // A failed disk write leaves raft and disk out of step: stop serving rather than guess.
        this.store.log.fatal({ err }, "store loop failed; stopping the store");
        void this.store.stop();
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
    const store = this.store;
    for (const peer of this.toDestroy) if (this.worker.destroy(peer)) this.toDestroy.delete(peer);

    // Readies whose snapshot installed in the background since the last turn go first.
    const work = this.worker.takeInstalled();
    const taken = new Set(work.map((w) => w.peer));
    for (const peer of store.peers.values()) {
      if (taken.has(peer) || this.worker.isInstalling(peer)) continue;
      this.proposeQueued(peer);
      this.sendReadIndex(peer);
      tendRaftLog(store, peer);
      if (!peer.raw.hasReady()) continue;
      const rd = peer.raw.ready();
      if (rd.snapshot?.metadata && rd.snapshot.metadata.index > 0n) this.worker.startInstall(peer, rd);
      else work.push({ peer, rd });
    }
    if (work.length === 0 && ![...store.peers.values()].some((p) => p.raftStateDirty || p.pendingLogDelete)) return;

    // Installed snapshots' old-log deletions land in this batch before this turn's appends, or a
    // later turn would delete entries appended (and acknowledged) now.
    const dirty = [...store.peers.values()].filter((p) => p.raftStateDirty || p.pendingLogDelete);

    // 1. Persist: every peer's log entries and hard state in one batch.
    const raftWb = store.opts.raft.newBatch();
    let mustSync = false;
    for (const peer of dirty) {
      if (peer.pendingLogDelete) {
        peer.storage.deleteLogRange(raftWb, peer.pendingLogDelete.from, peer.pendingLogDelete.to);
        peer.pendingLogDelete = undefined;
      }
    }
    for (const { peer, rd } of work) {
      peer.storage.append(rd.entries, raftWb);
      if (rd.hardState) peer.storage.setHardState(rd.hardState);
      if (rd.entries.length > 0 || rd.hardState || peer.raftStateDirty) {
        peer.storage.writeRaftState(raftWb);
        peer.raftStateDirty = false;
      }
      mustSync ||= rd.mustSync;
    }
    for (const peer of dirty) {
      if (peer.raftStateDirty) {
        peer.storage.writeRaftState(raftWb);
        peer.raftStateDirty = false;
      }
    }
    await raftWb.write(mustSync && !store.config.deliberateBugs?.has("skip-raft-fsync"));

    // 2. Send: only now that what the messages promise is durable.
    for (const { peer, rd } of work) {
      for (const m of rd.messages) {
        const env = peer.envelope(m);
        if (env) store.transport.send(env);
      }
    }
    store.transport.flush();

    // 3. Apply: every peer's committed entries in one kv batch, with their apply states.
    const kvWb = store.opts.kv.newBatch();
    const outcomes: Array<{ peer: Peer; outcome: ApplyOutcome }> = [];
    let kvSync = false;
    for (const { peer, rd } of work) {
      if (rd.committedEntries.length === 0 || peer.retiring) continue; // a retiring peer applies nothing after its removal
      const outcome = applyEntries(
        {
          storage: peer.storage,
          selfPeerId: peer.meta.id,
          applyConfChange: (cc) => peer.applyConfChange(cc),
          hasInitializedRegion: (id) => store.peers.get(id)?.storage.isInitialized() ?? false,
        },
        rd.committedEntries,
        kvWb,
      );
      kvSync ||= outcome.needsSync;
      peer.sizeDiffHint += outcome.writtenBytes;
      outcomes.push({ peer, outcome });
    }
    await kvWb.write(kvSync);

    // 4. Answer and follow up.
    for (const { peer, outcome } of outcomes) await this.afterApply(peer, outcome);
    for (const { peer, rd } of work) {
      if (rd.softState && !peer.isLeader()) peer.failAll(peer.notLeaderError());
      // A new leader tells the scheduler at once, so clients find it without waiting a heartbeat period.
      if (rd.softState && peer.isLeader()) this.store.opts.hooks?.onRegionHeartbeat?.(peer);
      for (const rs of rd.readStates) {
        const key = rs.requestCtx.toString("hex");
        const waiters = peer.readsInFlight.get(key);
        if (!waiters) continue;
        peer.readsInFlight.delete(key);
        peer.readsWaitingApply.push({ index: rs.index, waiters });
      }
      this.serveReads(peer);
      if (!peer.destroyed) peer.raw.advance(rd);
    }
    for (const { peer, outcome } of outcomes) {
      if (!outcome.removedSelf) continue;
      // A leader hands the commit of its own removal to the others before it goes (peer.retiring).
      if (peer.isLeader() && peer.region.peers.length > 0) peer.retire(peer.storage.appliedIndex, store.tickCount);
      else if (!this.worker.destroy(peer)) this.toDestroy.add(peer);
    }
    for (const peer of store.peers.values()) {
      if (peer.storage.snapshotRequested && !peer.generatingSnapshot) this.worker.generate(peer);
    }
    for (const peer of store.peers.values()) if (peer.raw.hasReady()) this.again = true;
  }

  private proposeQueued(peer: Peer): void {
    if (peer.proposeQueue.length === 0) return;
    const batch = peer.proposeQueue.splice(0);
    try {
      const { firstIndex, term } = peer.raw.proposeBatch(batch.map((p) => p.data));
      peer.dropProposalsOfOtherTerms(term);
      batch.forEach((p, i) => peer.proposals.push({ index: firstIndex + BigInt(i), term, done: p.done }));
    } catch (err) {
      if (!(err instanceof ErrProposalDropped)) throw err;
      const error = peer.isLeader() ? regionErrors.other(err.message) : peer.notLeaderError();
      for (const p of batch) p.done(errorResponse(error, peer.term));
    }
  }

  private sendReadIndex(peer: Peer): void {
    if (peer.readBatch.length === 0) return;
    const batch = peer.readBatch.splice(0);
    if (!peer.isLeader()) {
      const error = peer.notLeaderError();
      for (const w of batch) w.done({ error });
      return;
    }
    if (this.store.config.deliberateBugs?.has("read-without-read-index")) return void peer.readsWaitingApply.push({ index: 0n, waiters: batch });
    const ctx = peer.nextReadContext();
    peer.readsInFlight.set(ctx.toString("hex"), batch);
    peer.raw.readIndex(ctx);
  }

  private serveReads(peer: Peer): void {
    const applied = peer.storage.appliedIndex;
    while (peer.readsWaitingApply.length > 0 && peer.readsWaitingApply[0]!.index <= applied) {
      const { waiters } = peer.readsWaitingApply.shift()!;
      let snapshot: EngineSnapshot | undefined;
      for (const w of waiters) {
        const epochErr = checkRegionEpoch(w.req, peer.region);
        if (epochErr) {
          w.done({ error: epochErr });
        } else {
          // One snapshot for the whole batch: every reader holds a share and closes it.
          snapshot = snapshot ? snapshot.share() : this.store.opts.kv.snapshot();
          w.done({ region: peer.region, snapshot });
        }
      }
    }
  }

  private async afterApply(peer: Peer, outcome: ApplyOutcome): Promise<void> {
    for (const { index, term, resp } of outcome.responses) peer.finishProposal(index, term, resp);
    if (outcome.compacted) {
      const prev = peer.pendingLogDelete;
      peer.pendingLogDelete = mergeRange(prev, outcome.compacted);
      peer.raftStateDirty = true;
    }
    for (const region of outcome.splitRegions) await this.createSplitPeer(peer, region);
    if ((outcome.confChanged || outcome.splitRegions.length > 0) && peer.isLeader()) this.store.opts.hooks?.onRegionHeartbeat?.(peer);
  }

  private async createSplitPeer(parent: Peer, region: Region): Promise<void> {
    const store = this.store;
    // An uninitialized peer of the new region may have voted here, perhaps before a restart.
    const persisted = store.peers.has(region.id) ? undefined : await persistedHardState(store, region.id);
    const existing = store.peers.get(region.id);
    if (existing?.storage.isInitialized()) return; // it already caught up by snapshot
    if (existing) {
      existing.destroyed = true;
      existing.failAll(regionErrors.regionNotFound(region.id));
    }
    const meta = region.peers.find((p) => p.storeId === store.storeId);
    if (!meta) return;
    const storage = new PeerStorage(
      region,
      // Keep the replaced uninitialized peer's term and vote: it may have voted in this region.
      initialRaftState(existing?.storage.raftState.hardState ?? persisted, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM),
      { appliedIndex: RAFT_INIT_LOG_INDEX, truncatedState: { index: RAFT_INIT_LOG_INDEX, term: RAFT_INIT_LOG_TERM } },
      [],
    );
    const peer = new Peer(store.storeId, meta, storage, store.config, store.runtime);
    peer.raftStateDirty = true;
    store.addPeer(peer);
    // The parent's leader campaigns at once so the new region serves writes without an election timeout.
    if (parent.isLeader()) peer.raw.campaign();
    store.log.info({ region_id: String(region.id), parent: String(parent.regionId) }, "region split: new peer created");
    store.opts.hooks?.onRegionHeartbeat?.(peer);
  }
}
