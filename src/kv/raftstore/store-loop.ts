import type { Ready } from "../../raft/index.js";
import type { Snapshot } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import { PeerState, RaftSnapshotData } from "../../proto/raft_serverpb.js";
import { ALL_CFS, type EngineSnapshot, type WriteBatch } from "../engine/index.js";
import { applyEntries, type ApplyOutcome } from "./apply.js";
import { errorResponse, regionErrors } from "./errors.js";
import { ErrProposalDropped } from "../../raft/index.js";
import { checkRegionEpoch } from "./epoch.js";
import { regionCursor } from "./keyspace.js";
import { applyStateKey, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM, raftStateKey } from "./keys.js";
import { Peer } from "./peer.js";
import { initialRaftState, PeerStorage } from "./peer-storage.js";
import type { Store } from "./store.js";
import { persistedHardState } from "./inbox.js";
import { integrityMeta } from "./snap.js";

/**
 * The store loop. One turn handles the Readies of all peers together: snapshots to install,
 * then ONE raft-engine batch with every peer's entries and hard state (fsynced once: group
 * commit), then messages, then ONE kv batch applying every peer's committed entries, then the
 * callbacks. While a turn awaits the disk, new proposals and messages pile up for the next.
 */
export class StoreLoop {
  private scheduled = false;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly toDestroy = new Set<Peer>();

  constructor(private readonly store: Store) {}

  schedule(): void {
    if (this.store.stopped && !this.running) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  private readonly background = new Set<Promise<void>>();

  /** Resolves once background work (snapshot generation) has finished. */
  async backgroundIdle(): Promise<void> {
    await Promise.allSettled([...this.background]);
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
    for (const peer of this.toDestroy) await this.destroyPeer(peer);
    this.toDestroy.clear();

    for (const peer of store.peers.values()) {
      this.proposeQueued(peer);
      this.sendReadIndex(peer);
    }
    const work: Array<{ peer: Peer; rd: Ready }> = [];
    for (const peer of store.peers.values()) {
      if (peer.raw.hasReady()) work.push({ peer, rd: peer.raw.ready() });
    }
    if (work.length === 0 && ![...store.peers.values()].some((p) => p.raftStateDirty || p.pendingLogDelete)) return;

    for (const { peer, rd } of work) {
      if (rd.snapshot && rd.snapshot.metadata && rd.snapshot.metadata.index > 0n) await this.installSnapshot(peer, rd.snapshot);
    }
    // After the installs: their old-log deletions must land in this batch before this turn's
    // appends, or a later turn would delete entries appended (and acknowledged) now.
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
    await raftWb.write(mustSync);

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
      if (rd.committedEntries.length === 0) continue;
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
      if (outcome.removedSelf) await this.destroyPeer(peer);
    }
    for (const peer of store.peers.values()) {
      if (peer.storage.snapshotRequested && !peer.generatingSnapshot) this.generateSnapshot(peer);
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
    const peer = new Peer(store.storeId, meta, storage, store.config);
    peer.raftStateDirty = true;
    store.addPeer(peer);
    // The parent's leader campaigns at once so the new region serves writes without an election timeout.
    if (parent.isLeader()) peer.raw.campaign();
    store.log.info({ region_id: String(region.id), parent: String(parent.regionId) }, "region split: new peer created");
    store.opts.hooks?.onRegionHeartbeat?.(peer);
  }

  private async clearRange(kvWb: WriteBatch, region: Region): Promise<void> {
    const snap = this.store.opts.kv.snapshot();
    try {
      for (const cf of ALL_CFS) {
        const cursor = regionCursor(snap, cf, region);
        try {
          await cursor.seek(region.startKey);
          while (cursor.valid) {
            kvWb.delete(cf, cursor.key);
            await cursor.next();
          }
        } finally {
          await cursor.close();
        }
      }
    } finally {
      await snap.close();
    }
  }

  /** Replaces the region's data with the snapshot's: clear, load, states — one synced kv batch. */
  private async installSnapshot(peer: Peer, snapshot: Snapshot): Promise<void> {
    const md = snapshot.metadata!;
    const data = RaftSnapshotData.decode(snapshot.data);
    const region = data.region!;
    const key = { regionId: peer.regionId, term: md.term, index: md.index };
    const kvWb = this.store.opts.kv.newBatch();
    if (peer.storage.isInitialized()) await this.clearRange(kvWb, peer.region);
    await this.clearRange(kvWb, region);
    await this.store.snaps.loadInto(key, kvWb);
    const old = peer.storage.resetToSnapshot(region, md.index, md.term);
    peer.storage.writeApplyState(kvWb);
    peer.storage.writeRegionState(kvWb);
    await kvWb.write(true);
    if (old.oldLast >= old.oldFirst) peer.pendingLogDelete = mergeRange(peer.pendingLogDelete, { from: old.oldFirst - 1n, to: old.oldLast });
    peer.raftStateDirty = true;
    this.store.snapshotInstalled(peer.regionId);
    // Only files at or below this index: a newer snapshot may already be received and accepted.
    this.store.snaps.cleanup(peer.regionId, undefined, md.index);
    this.store.log.info({ region_id: String(peer.regionId), index: String(md.index), term: String(md.term) }, "applied snapshot");
  }

  /** Takes a kv snapshot now (apply state and data agree between turns) and writes the file in the background. */
  private generateSnapshot(peer: Peer): void {
    const storage = peer.storage;
    const index = storage.appliedIndex;
    const term = storage.term(index);
    const region = { ...storage.region, peers: storage.region.peers.map((p) => ({ ...p })) };
    const kvSnap = this.store.opts.kv.snapshot();
    const key = { regionId: region.id, term, index };
    peer.generatingSnapshot = true;
    const work = this.store.snaps
      .generate(key, kvSnap, region)
      .then((integrity) => {
        this.store.snaps.cleanup(region.id, key, undefined, "gen");
        storage.generated = {
          region,
          path: this.store.snaps.genPath(key),
          snapshot: {
            data: Buffer.from(RaftSnapshotData.encode({ region, fileSize: BigInt(integrity.size), data: [], meta: integrityMeta(integrity) }).finish()),
            metadata: { index, term, confState: { nodes: region.peers.map((p) => p.id) } },
          },
        };
        storage.snapshotRequested = false;
      })
      .catch((err: unknown) => this.store.log.error({ err, region_id: String(region.id) }, "snapshot generation failed; will retry"))
      .finally(() => {
        peer.generatingSnapshot = false;
        this.background.delete(work);
        this.schedule();
        return kvSnap.close();
      });
    this.background.add(work);
  }

  /** Removes a peer from this store: data of its range, its raft log and states; keeps a tombstone. */
  private async destroyPeer(peer: Peer): Promise<void> {
    const store = this.store;
    if (store.peers.get(peer.regionId) !== peer) return;
    peer.destroyed = true;
    // The tombstone comes first: a message arriving while the data is being cleared must not
    // recreate the peer being destroyed.
    if (peer.storage.isInitialized()) store.tombstones.set(peer.regionId, peer.region);
    store.peers.delete(peer.regionId);
    store.snapshotInstalled(peer.regionId);
    peer.failAll(regionErrors.regionNotFound(peer.regionId));
    const kvWb = store.opts.kv.newBatch();
    const raftWb = store.opts.raft.newBatch();
    if (peer.storage.isInitialized()) {
      if (!store.overlapsExisting(peer.regionId, peer.region.startKey, peer.region.endKey)) await this.clearRange(kvWb, peer.region);
      peer.storage.writeRegionState(kvWb, PeerState.Tombstone);
    }
    kvWb.deleteMeta(applyStateKey(peer.regionId));
    peer.storage.deleteLogRange(raftWb, peer.storage.truncatedIndex, peer.storage.lastIndex());
    raftWb.deleteMeta(raftStateKey(peer.regionId));
    await kvWb.write(true);
    await raftWb.write(true);
    store.snaps.cleanup(peer.regionId);
    store.log.info({ region_id: String(peer.regionId), peer_id: String(peer.meta.id) }, "peer destroyed");
  }
}

/** The union of two raft-log ranges (from, to] still to delete. */
function mergeRange(a: { from: bigint; to: bigint } | undefined, b: { from: bigint; to: bigint }): { from: bigint; to: bigint } {
  if (!a) return b;
  return { from: a.from < b.from ? a.from : b.from, to: a.to > b.to ? a.to : b.to };
}
