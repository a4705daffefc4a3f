import type { Ready } from "../../raft/index.js";
import type { Snapshot } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import { PeerState, RaftSnapshotData } from "../../proto/raft_serverpb.js";
import type { WriteBatch } from "../engine/index.js";
import { ALL_CFS } from "../engine/index.js";
import { regionCursor } from "./keyspace.js";
import { applyStateKey, raftStateKey } from "./keys.js";
import { clearRawChanges, writeRawChangesSince } from "./raw-changes.js";
import type { Peer } from "./peer.js";
import type { PeerStorage } from "./peer-storage.js";
import { integrityMeta } from "./snap.js";
import type { Store } from "./store.js";

/** A failed snapshot generation is retried after this, doubling per failure in a row up to the max. */
const GENERATE_RETRY_MS = { first: 100, max: 5_000 };

/** A Ready whose snapshot is being installed; it is persisted, sent and advanced once the install is durable. */
interface Install {
  rd: Ready;
  finished: boolean;
}

/**
 * The region-sized jobs of a store, off the store loop (TiKV's region worker): installing a
 * snapshot, generating one, and destroying a peer's data. Each is one big read and one big
 * write; run inside a turn they would stall every other region's heartbeats and elections.
 * While its snapshot installs, a peer is frozen: no ticks, no messages, no new Ready.
 */
export class RegionWorker {
  private readonly tasks = new Set<Promise<void>>();
  private readonly installs = new Map<Peer, Install>();
  /** Regions whose last snapshot generation failed: failures in a row, and when to try again. */
  private readonly generateBackoff = new Map<bigint, { failures: number; retryAt: number }>();

  constructor(
    private readonly store: Store,
    /** Wakes the store loop (a job finished). */
    private readonly wake: () => void,
  ) {}

  installing(): number {
    return this.installs.size;
  }

  isInstalling(peer: Peer): boolean {
    return this.installs.has(peer);
  }

  /** Resolves once every job in flight has finished. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  private track(job: Promise<void>, what: string, fatal: boolean): void {
    const task = job
      .catch((err: unknown) => {
        if (!fatal) {
          this.store.log.error({ err }, `${what} failed; will retry`);
          return;
        }
        // A failed disk write leaves raft and disk out of step: stop serving rather than guess.
        this.store.log.fatal({ err }, `${what} failed; stopping the store`);
        void this.store.stop();
      })
      .finally(() => {
        this.tasks.delete(task);
        this.wake();
      });
    this.tasks.add(task);
  }

  // ---- snapshot install ----

  startInstall(peer: Peer, rd: Ready): void {
    const install: Install = { rd, finished: false };
    this.installs.set(peer, install);
    this.track(
      this.install(peer, rd.snapshot!).then(() => {
        install.finished = true;
      }),
      `installing a snapshot of region ${peer.regionId}`,
      true,
    );
  }

  /** The Readies whose snapshots are now durable: the loop handles them like any other. */
  takeInstalled(): Array<{ peer: Peer; rd: Ready }> {
    const out: Array<{ peer: Peer; rd: Ready }> = [];
    for (const [peer, install] of this.installs) {
      if (!install.finished) continue;
      this.installs.delete(peer);
      // A peer replaced meanwhile must not persist or send its Ready over its successor's state.
      if (this.store.peers.get(peer.regionId) === peer && !peer.destroyed) out.push({ peer, rd: install.rd });
    }
    return out;
  }

  /** Replaces the region's data with the snapshot's: clear, load, states — one synced kv batch. */
  private async install(peer: Peer, snapshot: Snapshot): Promise<void> {
    const store = this.store;
    const md = snapshot.metadata!;
    const region = RaftSnapshotData.decode(snapshot.data).region!;
    const key = { regionId: peer.regionId, term: md.term, index: md.index };
    const kvWb = store.kv.newBatch();
    if (peer.storage.isInitialized()) await this.clearRange(kvWb, peer.region);
    await this.clearRange(kvWb, region);
    // The raw watch's records of the old log: a feed cannot resume across a snapshot.
    await clearRawChanges(store.kv, kvWb, peer.regionId);
    writeRawChangesSince(kvWb, peer.regionId, md.index);
    await store.snaps.loadInto(key, kvWb);
    const old = peer.storage.resetToSnapshot(region, md.index, md.term);
    peer.storage.writeApplyState(kvWb);
    peer.storage.writeRegionState(kvWb);
    await kvWb.write(true);
    // The old log goes in the raft batch of the turn that handles this Ready, before its appends.
    if (old.oldLast >= old.oldFirst) peer.deleteLogLater({ from: old.oldFirst - 1n, to: old.oldLast });
    else peer.persistRaftStateNextTurn();
    store.snapshotInstalled(peer.regionId);
    // Only files at or below this index: a newer snapshot may already be received and accepted.
    store.snaps.cleanup(peer.regionId, undefined, md.index);
    store.log.info(
      { region_id: String(peer.regionId), index: String(md.index), term: String(md.term) },
      "applied snapshot",
    );
  }

  async clearRange(kvWb: WriteBatch, region: Region): Promise<void> {
    const snap = this.store.kv.snapshot();
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

  // ---- snapshot generation ----

  /**
   * Takes a kv snapshot now (apply state and data agree between turns) and writes the file in
   * the background. After a failure (a disk error) the region waits out a backoff first; raft
   * keeps asking for as long as a follower needs the snapshot, which bounds the retries.
   */
  generate(peer: Peer): void {
    const store = this.store;
    const backoff = this.generateBackoff.get(peer.regionId);
    if (backoff && store.runtime.now() < backoff.retryAt) return;
    const storage = peer.storage;
    const index = storage.appliedIndex;
    const term = storage.term(index);
    const region = { ...storage.region, peers: storage.region.peers.map((p) => ({ ...p })) };
    const kvSnap = store.kv.snapshot();
    const key = { regionId: region.id, term, index };
    peer.snapshotGeneration(true);
    const job = store.snaps
      .generate(key, kvSnap, region)
      .then((integrity) => {
        store.snaps.cleanup(region.id, key, undefined, "gen");
        storage.generated = {
          region,
          path: store.snaps.genPath(key),
          snapshot: {
            data: Buffer.from(
              RaftSnapshotData.encode({
                region,
                fileSize: BigInt(integrity.size),
                data: [],
                meta: integrityMeta(integrity),
              }).finish(),
            ),
            metadata: { index, term, confState: { nodes: region.peers.map((p) => p.id) } },
          },
        };
        storage.snapshotRequested = false;
        this.generateBackoff.delete(region.id);
      })
      .catch((err: unknown) => {
        const failures = (backoff?.failures ?? 0) + 1;
        const waitMs = Math.min(GENERATE_RETRY_MS.max, GENERATE_RETRY_MS.first * 2 ** (failures - 1));
        this.generateBackoff.set(region.id, { failures, retryAt: store.runtime.now() + waitMs });
        store.runtime.setTimeout(this.wake, waitMs);
        throw err;
      })
      .finally(() => {
        peer.snapshotGeneration(false);
        return kvSnap.close();
      });
    this.track(job, `generating a snapshot of region ${region.id}`, false);
  }

  // ---- peer destroy ----

  /**
   * Removes a peer from this store: at once from the store's view (tombstone first, so a message
   * arriving meanwhile cannot recreate it), then its data, raft log and states in the
   * background. Its range and id stay reserved until the data is gone. Returns false while the
   * peer's snapshot is still installing (the caller asks again next turn).
   */
  destroy(peer: Peer): boolean {
    const store = this.store;
    if (store.peers.get(peer.regionId) !== peer) return true;
    if (this.installs.has(peer)) return false;
    // Marks it destroyed and answers what waits on it (RegionNotFound, or StaleCommand once in the log).
    peer.handle({ type: "destroy" });
    this.generateBackoff.delete(peer.regionId);
    const initialized = peer.storage.isInitialized();
    const region = peer.region;
    if (initialized) store.tombstones.set(peer.regionId, region);
    store.peers.delete(peer.regionId);
    store.snapshotInstalled(peer.regionId);
    store.reserveForDestroy(peer.regionId, initialized ? region : undefined);
    const job = this.clearPeer(peer, initialized, region).finally(() => store.releaseDestroyed(peer.regionId));
    this.track(job, `destroying the peer of region ${peer.regionId}`, true);
    return true;
  }

  private async clearPeer(peer: Peer, initialized: boolean, region: Region): Promise<void> {
    await this.clearStorage(peer.storage, initialized, region);
    this.store.log.info({ region_id: String(peer.regionId), peer_id: String(peer.meta.id) }, "peer destroyed");
  }

  /**
   * At start, before serving: the region state of a region whose removal this store applied
   * but whose destroy a crash interrupted (loadPeers' `left`). The destroy is finished now.
   */
  async clearLeft(storage: PeerStorage): Promise<void> {
    await this.clearStorage(storage, true, storage.region);
    this.store.log.info({ region_id: String(storage.region.id) }, "removed peer destroyed after a restart");
  }

  private async clearStorage(storage: PeerStorage, initialized: boolean, region: Region): Promise<void> {
    const store = this.store;
    const regionId = region.id;
    const kvWb = store.kv.newBatch();
    const raftWb = store.raftEngine.newBatch();
    if (initialized) {
      if (!store.overlapsExisting(regionId, region.startKey, region.endKey)) await this.clearRange(kvWb, region);
      storage.writeRegionState(kvWb, PeerState.Tombstone);
    }
    kvWb.deleteMeta(applyStateKey(regionId));
    await clearRawChanges(store.kv, kvWb, regionId);
    storage.deleteLogRange(raftWb, storage.truncatedIndex, storage.lastIndex());
    raftWb.deleteMeta(raftStateKey(regionId));
    await kvWb.write(true);
    await raftWb.write(true);
    store.snaps.cleanup(regionId);
  }
}

/** The union of two raft-log ranges (from, to] still to delete. */
export function mergeRange(
  a: { from: bigint; to: bigint } | undefined,
  b: { from: bigint; to: bigint },
): { from: bigint; to: bigint } {
  if (!a) return b;
  return { from: a.from < b.from ? a.from : b.from, to: a.to > b.to ? a.to : b.to };
}
