import type { Message } from "../../raft/index.js";
import { MessageType } from "../../raft/index.js";
import type { Region } from "../../proto/metapb.js";
import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import { RaftSnapshotData } from "../../proto/raft_serverpb.js";
import { compareBytes } from "../../util/bytes.js";
import { isEpochStale } from "./epoch.js";
import { keyInRegion } from "./keyspace.js";
import { DropLog, invalidRaftMessage } from "./message-checks.js";
import type { Peer } from "./peer.js";
import { isInitialMessage } from "./peer.js";
import type { PeerHost } from "./peer-lifecycle.js";
import { createUninitializedPeer, persistedHardState } from "./peer-lifecycle.js";
import { isRetirementProbe } from "./retire.js";
import { snapshotIntegrity } from "./snap.js";
import type { SnapManager } from "./snap.js";
import { SnapshotLimitError, withIdleTimeout } from "./snapshot-limits.js";
import type { StoreLoop } from "./store-loop.js";
import type { RaftTransport } from "../transport/transport.js";

/** How long an accepted, not yet installed snapshot reserves its range (raft may find it stale and never install it). */
const PENDING_SNAPSHOT_MS = 60_000;

/**
 * Raft messages and snapshots from other stores, in the order TinyKV's handler checks them:
 * validate the envelope, tombstone (GC) messages, another incarnation of our peer, create an
 * uninitialized peer, answer a stale sender, vet a snapshot, then step raft.
 */
/** What the inbox needs of its store: creating peers, the loop's destroy/busy view, snapshots, tombstones. */
export interface InboxContext extends PeerHost {
  readonly stopped: boolean;
  readonly tombstones: ReadonlyMap<bigint, Region>;
  readonly snaps: Pick<SnapManager, "receive" | "removeReceived" | "hasReceived">;
  readonly transport: Pick<RaftTransport, "send">;
  readonly loop: Pick<StoreLoop, "destroyLater" | "isBusy">;
  addPeer(peer: Peer): void;
  onRaftMessage(msg: RaftMessage): void;
}

export class Inbox {
  private readonly drops: DropLog;
  private readonly snapshotRefusals: DropLog;
  /** Messages for regions whose uninitialized peer is being created (its raft state is loading). */
  private readonly creating = new Map<bigint, RaftMessage[]>();
  /**
   * Snapshots accepted but not installed yet, by region: their ranges count as taken, so two
   * overlapping snapshots of different regions are never both on their way in.
   */
  private readonly pendingSnapshots = new Map<bigint, { region: Region; index: bigint; term: bigint; until: number }>();

  /** Regions whose destroyed peer's data is still being cleared (with the range, when it had one). */
  private readonly destroying = new Map<bigint, Region | undefined>();

  constructor(private readonly store: InboxContext) {
    this.drops = new DropLog((fields, line) => store.log.warn(fields, line));
    this.snapshotRefusals = new DropLog((fields) => store.log.warn(fields, "refused a snapshot stream"));
  }

  onRaftMessage(msg: RaftMessage): void {
    const store = this.store;
    const invalid = invalidRaftMessage(msg, store.storeId);
    if (invalid) {
      this.drops.drop(
        invalid,
        { region_id: String(msg.regionId), from_store: String(msg.fromPeer?.storeId ?? 0n) },
        store.runtime.now(),
      );
      return;
    }
    const m = msg.message!;
    const peer = store.peers.get(msg.regionId);
    if (msg.isTombstone) {
      if (peer && peer.meta.id === msg.toPeer!.id && !isEpochStale(msg.regionEpoch, peer.region.regionEpoch))
        store.loop.destroyLater(peer);
      return;
    }
    if (peer && peer.meta.id !== msg.toPeer!.id) {
      if (msg.toPeer!.id < peer.meta.id) return; // a message for an older incarnation of our peer
      // Our peer was removed and the region re-added this store with a new peer id.
      store.loop.destroyLater(peer);
      return;
    }
    if (!peer) {
      if (this.answerStaleToTombstone(msg)) return;
      this.maybeCreatePeer(msg);
      return;
    }
    if (
      peer.storage.isInitialized() &&
      isEpochStale(msg.regionEpoch, peer.region.regionEpoch) &&
      !peer.region.peers.some((p) => p.id === msg.fromPeer!.id)
    ) {
      this.sendGc(msg, peer.region);
      return;
    }
    if (isRetirementProbe(m)) return; // the survivor has not applied the removal yet: nothing to answer
    if (store.loop.isBusy(peer)) return; // installing a snapshot: it answers nothing until done; raft resends
    if (m.msgType === MessageType.MsgSnapshot && !this.snapshotAcceptable(peer, msg)) return;
    peer.handle({ type: "raftMessage", from: msg.fromPeer!, message: m });
  }

  /**
   * A region this store left long ago answers a vote from a store that is not in the region as
   * this store last knew it: that sender was removed while it was away and would otherwise
   * campaign forever, blocking its range on its own store (TiKV's GC message).
   */
  private answerStaleToTombstone(msg: RaftMessage): boolean {
    const tomb = this.store.tombstones.get(msg.regionId);
    if (!tomb || !isEpochStale(msg.regionEpoch, tomb.regionEpoch)) return false;
    const m = msg.message!;
    const vote =
      m.msgType === MessageType.MsgRequestVote || m.msgType === MessageType.MsgRequestPreVote || isRetirementProbe(m);
    if (vote && !tomb.peers.some((p) => p.storeId === msg.fromPeer!.storeId)) this.sendGc(msg, tomb);
    return true;
  }

  /** Tells the sender of `msg` that its peer is no longer in `region` (newer epoch): it destroys itself. */
  private sendGc(msg: RaftMessage, region: Region): void {
    this.store.transport.send({
      regionId: msg.regionId,
      fromPeer: msg.toPeer,
      toPeer: msg.fromPeer,
      message: {
        ...msg.message!,
        msgType: MessageType.MsgHeartbeat,
        from: msg.toPeer!.id,
        to: msg.fromPeer!.id,
        entries: [],
        snapshot: undefined,
        context: Buffer.alloc(0),
      },
      regionEpoch: region.regionEpoch,
      isTombstone: true,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
    });
  }

  /**
   * A message for a region this store has no peer of may create an uninitialized one that waits
   * for a snapshot. Its persisted term and vote are loaded first: a peer that voted before a
   * restart must not vote again in the same term. Messages arriving meanwhile wait with it.
   */
  private maybeCreatePeer(msg: RaftMessage): void {
    const store = this.store;
    if (!isInitialMessage(msg.message!)) return;
    const waiting = this.creating.get(msg.regionId);
    if (waiting) {
      waiting.push(msg);
      return;
    }
    if (!this.mayCreatePeer(msg)) return;
    this.creating.set(msg.regionId, [msg]);
    void persistedHardState(store.raftEngine, msg.regionId)
      .then((hardState) => {
        const queued = this.creating.get(msg.regionId) ?? [];
        this.creating.delete(msg.regionId);
        if (store.stopped) return []; // a stopped store handles nothing more
        if (store.peers.has(msg.regionId) || !this.mayCreatePeer(msg)) return queued;
        store.addPeer(createUninitializedPeer(store, msg.regionId, msg.toPeer!, hardState));
        return queued;
      })
      .then((queued) => {
        // Through the store's door again: it refuses everything once the store stopped.
        for (const m of queued) store.onRaftMessage(m);
      })
      .catch((err: unknown) => {
        this.creating.delete(msg.regionId);
        store.log.error(
          { err, region_id: String(msg.regionId) },
          "could not load the raft state of a new peer; its messages are dropped",
        );
      });
  }

  private mayCreatePeer(msg: RaftMessage): boolean {
    if (this.destroying.has(msg.regionId)) return false; // the sender retries once the old peer is gone
    const tomb = this.store.tombstones.get(msg.regionId);
    if (tomb && !isEpochStale(tomb.regionEpoch, msg.regionEpoch)) return false; // late message for a region we left
    // Only a membership change since this store left can bring a peer here again (TinyKV's
    // checkMsg): a newer version alone is a split our old peer missed, so a late message of a
    // member that has not applied our removal yet, and the empty peer it made would vote.
    if (tomb && msg.regionEpoch!.confVer <= tomb.regionEpoch!.confVer) return false;
    return !this.overlapsExisting(msg.regionId, msg.startKey, msg.endKey);
  }

  private receivingSnapshots = 0;

  /** Snapshot streams being received plus snapshots accepted and not yet installed. */
  incomingSnapshots(): number {
    return this.receivingSnapshots + this.pendingSnapshots.size;
  }

  /** Receives a snapshot stream within the store's limits (snapshot-limits.ts); a refusal throws SnapshotLimitError. */
  async onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    const { concurrentRecvSnapLimit, snapRecvIdleMs } = this.store.config;
    if (this.receivingSnapshots >= concurrentRecvSnapLimit)
      throw this.refuse(
        new SnapshotLimitError(
          "concurrentRecvSnapLimit",
          this.receivingSnapshots + 1,
          concurrentRecvSnapLimit,
          "snapshot streams at once",
        ),
      );
    this.receivingSnapshots++;
    try {
      await this.receiveSnapshot(withIdleTimeout(chunks, this.store.runtime, snapRecvIdleMs));
    } finally {
      this.receivingSnapshots--;
    }
  }

  private refuse(err: SnapshotLimitError, fields: Record<string, unknown> = {}): SnapshotLimitError {
    this.snapshotRefusals.drop(err.message, { ...fields, limit: err.limit }, this.store.runtime.now());
    return err;
  }

  private async receiveSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    const it = chunks[Symbol.asyncIterator]();
    try {
      // The head alone says where the data goes and how big it may be: vet it before waiting for data.
      const first = await it.next();
      if (first.done) throw new Error("snapshot stream ended before its first chunk");
      const head = first.value.message;
      if (!head) throw new Error("snapshot stream: the first chunk carries no message");
      const invalid =
        invalidRaftMessage(head, this.store.storeId) ??
        (head.message?.msgType === MessageType.MsgSnapshot
          ? undefined
          : "snapshot stream head is not a snapshot message");
      if (invalid) throw new Error(`snapshot stream refused: ${invalid}`);
      const key = snapKeyOf(head);
      const meta = RaftSnapshotData.decode(head.message!.snapshot!.data);
      const expected = snapshotIntegrity(meta);
      const region = meta.region!;
      // Refused before a byte is written; more than declared is refused while receiving (SnapManager).
      const max = this.store.config.snapRecvMaxBytes;
      if (expected.size > max)
        throw this.refuse(new SnapshotLimitError("snapRecvMaxBytes", expected.size, max, "declared bytes"), {
          region_id: String(key.regionId),
        });
      const data = (async function* () {
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value.data;
      })();
      // A short, long or corrupt file is deleted and refused: the sender learns it failed and retries.
      await this.store.snaps.receive(key, data, expected, (cf, k) => keyInRegion(cf, k, region));
      this.onRaftMessage(head);
      // A file its peer did not take (busy, stale, no such peer) is never installed: do not keep it.
      if (this.pendingSnapshots.get(region.id)?.index !== key.index) this.store.snaps.removeReceived(key);
    } finally {
      // Refused or failed midway: the source stops (a finished one ignores this).
      await it.return?.();
    }
  }

  /** True when [start, end) overlaps an initialized region, or an incoming snapshot, of another id on this store. */
  overlapsExisting(regionId: bigint, start: Buffer, end: Buffer): boolean {
    const overlaps = (r: Region) =>
      (r.endKey.length === 0 || compareBytes(start, r.endKey) < 0) &&
      (end.length === 0 || compareBytes(r.startKey, end) < 0);
    for (const p of this.store.peers.values()) {
      if (p.regionId !== regionId && p.storage.isInitialized() && overlaps(p.region)) return true;
    }
    for (const [id, r] of this.destroying) {
      if (id !== regionId && r && overlaps(r)) return true;
    }
    this.expirePendingSnapshots(this.store.runtime.now());
    for (const [id, pending] of this.pendingSnapshots) {
      if (id !== regionId && overlaps(pending.region)) return true;
    }
    return false;
  }

  reserveForDestroy(regionId: bigint, region: Region | undefined): void {
    this.destroying.set(regionId, region);
  }

  releaseDestroyed(regionId: bigint): void {
    this.destroying.delete(regionId);
  }

  snapshotInstalled(regionId: bigint): void {
    this.pendingSnapshots.delete(regionId);
  }

  /** Accepted snapshots raft never installed lapse: their range is free again and their files are deleted. */
  expirePendingSnapshots(now: number): void {
    for (const [id, pending] of this.pendingSnapshots) {
      if (pending.until >= now) continue;
      const peer = this.store.peers.get(id);
      if (peer && this.store.loop.isBusy(peer)) continue; // installing it right now: keep the range and the file
      this.pendingSnapshots.delete(id);
      this.store.snaps.removeReceived({ regionId: id, term: pending.term, index: pending.index });
    }
  }

  private snapshotAcceptable(peer: Peer, msg: RaftMessage): boolean {
    const store = this.store;
    const m: Message = msg.message!;
    const key = snapKeyOf(msg);
    const region = RaftSnapshotData.decode(m.snapshot!.data).region!;
    const refuse = (why: string) => {
      store.log.info({ region_id: String(region.id), peer_id: String(peer.meta.id) }, why);
      store.snaps.removeReceived(key); // never installed: do not keep the file
      return false;
    };
    if (!region.peers.some((p) => p.id === peer.meta.id))
      return refuse("dropping a snapshot whose region does not include this peer");
    if (this.overlapsExisting(region.id, region.startKey, region.endKey))
      return refuse("dropping a snapshot that overlaps another region here");
    if (!store.snaps.hasReceived(key)) return false;
    this.pendingSnapshots.set(region.id, {
      region,
      index: key.index,
      term: key.term,
      until: store.runtime.now() + PENDING_SNAPSHOT_MS,
    });
    return true;
  }
}

export function snapKeyOf(msg: RaftMessage): { regionId: bigint; term: bigint; index: bigint } {
  const md = msg.message!.snapshot!.metadata!;
  return { regionId: msg.regionId, term: md.term, index: md.index };
}
