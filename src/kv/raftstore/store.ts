import { ErrProposalDropped, MessageType, SnapshotStatus, type Message } from "../../raft/index.js";
import { ConfChange, ConfChangeType, HardState } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta, Region, RegionEpoch } from "../../proto/metapb.js";
import { AdminCmdType, RaftCmdRequest, RaftCmdResponse, type RaftRequestHeader } from "../../proto/raft_cmdpb.js";
import { PeerState, RaftApplyState, RaftLocalState, RaftSnapshotData, RegionLocalState, type RaftMessage, type SnapshotChunk } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import { compareBytes } from "../../util/bytes.js";
import type { Engine } from "../engine/index.js";
import type { RaftMessageSink, RaftTransport, SnapshotSource, TransportEvents } from "../transport/transport.js";
import type { RaftstoreConfig } from "./config.js";
import { checkKeysInRegion, checkRegionEpoch, isEpochStale } from "./epoch.js";
import { errorResponse, regionErrors } from "./errors.js";
import { raftStateKey, REGION_META_MAX_KEY, REGION_META_MIN_KEY } from "./keys.js";
import { isInitialMessage, Peer, type ReadOutcome } from "./peer.js";
import { PeerStorage } from "./peer-storage.js";
import { SnapManager, type SnapKey } from "./snap.js";
import { StoreLoop } from "./store-loop.js";
import { maybeCompactLog, runSplitChecks } from "./housekeeping.js";

/** Hooks for the scheduler integration (region heartbeats, split ids); all optional. */
export interface StoreHooks {
  /** A leader's region changed or its heartbeat is due. */
  onRegionHeartbeat?(peer: Peer): void;
  /** A split check found a split key for a region this store leads. */
  onSplitKey?(peer: Peer, splitKey: Buffer): void;
}

export interface StoreOptions {
  storeId: bigint;
  kv: Engine;
  raft: Engine;
  snapDir: string;
  config: RaftstoreConfig;
  log: Logger;
  makeTransport(source: SnapshotSource, events: TransportEvents): RaftTransport;
  hooks?: StoreHooks;
}

export class StoreStoppedError extends Error {
  constructor(readonly storeId: bigint) {
    super(`store ${storeId} is stopped`);
    this.name = "StoreStoppedError";
  }
}

/**
 * One store: all region peers on this node, the router that sends requests and messages to
 * them, and the loop that persists, sends and applies their Readies in batches.
 */
export class Store implements RaftMessageSink {
  readonly storeId: bigint;
  readonly peers = new Map<bigint, Peer>();
  /** Regions whose peer here was destroyed, with the epoch at that time. */
  readonly tombstones = new Map<bigint, RegionEpoch>();
  readonly snaps: SnapManager;
  readonly transport: RaftTransport;
  readonly loop: StoreLoop;
  readonly log: Logger;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private splitCheck: Promise<void> | undefined;
  /** Set once every region is loaded: until then messages and requests are refused. */
  private started = false;
  stopped = false;

  constructor(readonly opts: StoreOptions) {
    this.storeId = opts.storeId;
    this.log = opts.log.child({ store_id: String(opts.storeId) });
    this.snaps = new SnapManager(opts.snapDir);
    this.transport = opts.makeTransport((msg) => this.snapshotSource(msg), {
      onUnreachable: (msg) => this.peers.get(msg.regionId)?.raw.reportUnreachable(msg.toPeer!.id),
      onSnapshotStatus: (msg, ok) => {
        this.peers.get(msg.regionId)?.raw.reportSnapshot(msg.toPeer!.id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        this.loop.schedule();
      },
    });
    this.loop = new StoreLoop(this);
  }

  get config(): RaftstoreConfig {
    return this.opts.config;
  }

  /** Loads every region of this store from the kv engine and starts ticking. */
  async start(): Promise<void> {
    const snap = this.opts.kv.snapshot();
    const regions: Array<{ state: PeerState; region: Region }> = [];
    try {
      for await (const { value } of snap.rawRange(REGION_META_MIN_KEY, REGION_META_MAX_KEY)) {
        const st = RegionLocalState.decode(value);
        regions.push({ state: st.state, region: st.region! });
      }
    } finally {
      await snap.close();
    }
    for (const { state, region } of regions) {
      if (state === PeerState.Tombstone) {
        this.tombstones.set(region.id, region.regionEpoch!);
        continue;
      }
      const meta = region.peers.find((p) => p.storeId === this.storeId);
      if (!meta) {
        // This store applied its own removal and crashed before destroying the peer: treat the
        // region as left, so late messages for the old peer cannot create a new one.
        this.log.warn({ region_id: String(region.id) }, "region state without a peer on this store: treating it as removed");
        this.tombstones.set(region.id, region.regionEpoch!);
        continue;
      }
      const storage = await PeerStorage.load(this.opts.kv, this.opts.raft, region);
      this.addPeer(new Peer(this.storeId, meta, storage, this.config));
    }
    this.started = true;
    this.log.info({ regions: this.peers.size }, "store started");
    this.tickTimer = setInterval(() => this.onTick(), this.config.raftBaseTickMs);
    this.loop.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.tickTimer);
    await this.loop.idle();
    await this.splitCheck;
    await this.loop.backgroundIdle();
    for (const peer of this.peers.values()) peer.failAll(regionErrors.other(`store ${this.storeId} is stopping`));
    await this.transport.close();
  }

  addPeer(peer: Peer): void {
    this.peers.set(peer.regionId, peer);
  }

  private onTick(): void {
    if (this.stopped) return;
    this.ticks++;
    const now = Date.now();
    const gcEvery = Math.max(1, Math.round(this.config.raftLogGcTickMs / this.config.raftBaseTickMs));
    const hbEvery = Math.max(1, Math.round(this.config.schedulerHeartbeatTickMs / this.config.raftBaseTickMs));
    const splitEvery = Math.max(1, Math.round(this.config.splitRegionCheckTickMs / this.config.raftBaseTickMs));
    for (const peer of this.peers.values()) {
      peer.raw.tick();
      peer.expireReads(now);
      if (this.ticks % gcEvery === 0) maybeCompactLog(this, peer);
      if (this.ticks % hbEvery === 0 && peer.isLeader()) this.opts.hooks?.onRegionHeartbeat?.(peer);
    }
    if (this.ticks % splitEvery === 0 && !this.splitCheck) {
      this.splitCheck = runSplitChecks(this).finally(() => (this.splitCheck = undefined));
    }
    this.loop.schedule();
  }

  /** Proposes a split with ids from the scheduler; the region must still be at `epoch`. */
  proposeSplit(regionId: bigint, epoch: RegionEpoch, splitKey: Buffer, newRegionId: bigint, newPeerIds: bigint[]): Promise<RaftCmdResponse> {
    const peer = this.peers.get(regionId);
    return this.propose(
      RaftCmdRequest.fromPartial({
        header: { regionId, peer: peer?.meta, regionEpoch: epoch },
        adminRequest: { cmdType: AdminCmdType.Split, split: { splitKey, newRegionId, newPeerIds } },
      }),
    );
  }

  // ---- requests ----

  /** Routes a command to the region's leader peer; checks done before proposing mirror TinyKV's order. */
  private route(header: RaftRequestHeader | undefined): Peer | RaftCmdResponse {
    if (this.stopped || !this.started) return errorResponse(regionErrors.other(`store ${this.storeId} is not serving (starting or stopping)`));
    const regionId = header?.regionId ?? 0n;
    if (header?.peer && header.peer.storeId !== 0n && header.peer.storeId !== this.storeId) {
      return errorResponse(regionErrors.storeNotMatch(header.peer.storeId, this.storeId));
    }
    const peer = this.peers.get(regionId);
    if (!peer || peer.destroyed) return errorResponse(regionErrors.regionNotFound(regionId));
    if (!peer.isLeader()) return errorResponse(peer.notLeaderError(), peer.term);
    if (header?.term && header.term !== 0n && peer.term > header.term + 1n) return errorResponse(regionErrors.staleCommand(), peer.term);
    return peer;
  }

  /** Proposes a write or an admin command; resolves when it has been applied (or failed). */
  propose(req: RaftCmdRequest): Promise<RaftCmdResponse> {
    const routed = this.route(req.header);
    if (!(routed instanceof Peer)) return Promise.resolve(routed);
    const peer = routed;
    const epochErr = checkRegionEpoch(req, peer.region) ?? checkKeysInRegion(req, peer.region);
    if (epochErr) return Promise.resolve(errorResponse(epochErr, peer.term));
    return new Promise((resolve) => {
      try {
        const admin = req.adminRequest;
        let at: { index: bigint; term: bigint };
        if (admin?.cmdType === AdminCmdType.TransferLeader) {
          peer.raw.transferLeader(admin.transferLeader!.peer!.id);
          this.loop.schedule();
          resolve(RaftCmdResponse.fromPartial({ header: {}, adminResponse: { cmdType: AdminCmdType.TransferLeader, transferLeader: {} } }));
          return;
        } else if (admin?.cmdType === AdminCmdType.ChangePeer) {
          const change = admin.changePeer!;
          if (change.changeType === ConfChangeType.RemoveNode && change.peer?.id === peer.meta.id) {
            // A leader that removes itself may destroy itself before any follower learns the
            // removal committed; with two peers that leaves one voter that can never win. Hand
            // leadership over first; the caller retries on the new leader.
            const target = peer.region.peers.find((p) => p.id !== peer.meta.id);
            if (target) peer.raw.transferLeader(target.id);
            this.loop.schedule();
            resolve(errorResponse(regionErrors.notLeader(peer.regionId, target), peer.term));
            return;
          }
          peer.rememberPeer(change.peer);
          const cc = ConfChange.fromPartial({ changeType: change.changeType, nodeId: change.peer!.id, context: Buffer.from(RaftCmdRequest.encode(req).finish()) });
          at = peer.raw.proposeConfChange(cc);
        } else {
          // Batched with the other commands of this turn: one append message per follower.
          peer.proposeQueue.push({ data: Buffer.from(RaftCmdRequest.encode(req).finish()), done: resolve });
          this.loop.schedule();
          return;
        }
        peer.dropProposalsOfOtherTerms(at.term);
        peer.proposals.push({ index: at.index, term: at.term, done: resolve });
        this.loop.schedule();
      } catch (err) {
        if (!(err instanceof ErrProposalDropped)) throw err;
        resolve(errorResponse(peer.isLeader() ? regionErrors.other(err.message) : peer.notLeaderError(), peer.term));
      }
    });
  }

  /** A linearizable read: ReadIndex, then a kv snapshot once apply has caught up. */
  read(header: RaftRequestHeader | undefined): Promise<ReadOutcome> {
    const routed = this.route(header);
    if (!(routed instanceof Peer)) return Promise.resolve({ error: routed.header!.error! });
    const peer = routed;
    const req: RaftCmdRequest = { header, requests: [], adminRequest: undefined };
    const epochErr = checkRegionEpoch(req, peer.region);
    if (epochErr) return Promise.resolve({ error: epochErr });
    return new Promise((resolve) => {
      peer.readBatch.push({ deadline: Date.now() + this.config.requestTimeoutMs, req, done: resolve });
      this.loop.schedule();
    });
  }

  // ---- raft messages from other stores ----

  onRaftMessage(msg: RaftMessage): void {
    // Before start() has loaded every region a message could create a duplicate, empty peer.
    if (!this.started || this.stopped || !msg.toPeer || msg.toPeer.storeId !== this.storeId || !msg.regionEpoch || !msg.message) return;
    let peer = this.peers.get(msg.regionId);
    if (msg.isTombstone) {
      if (peer && peer.meta.id === msg.toPeer.id && !isEpochStale(msg.regionEpoch, peer.region.regionEpoch)) this.loop.destroyLater(peer);
      return;
    }
    if (peer && peer.meta.id !== msg.toPeer.id) {
      if (msg.toPeer.id < peer.meta.id) return; // a message for an older incarnation of our peer
      // Our peer was removed and the region re-added this store with a new peer id.
      this.loop.destroyLater(peer);
      return;
    }
    if (!peer) {
      this.maybeCreatePeer(msg);
      return;
    }
    if (peer.storage.isInitialized() && isEpochStale(msg.regionEpoch, peer.region.regionEpoch) && !peer.region.peers.some((p) => p.id === msg.fromPeer!.id)) {
      this.sendTombstone(peer, msg);
      return;
    }
    if (msg.message.msgType === MessageType.MsgSnapshot && !this.snapshotAcceptable(peer, msg.message)) return;
    peer.rememberPeer(msg.fromPeer);
    try {
      peer.raw.step(msg.message);
    } catch (err) {
      this.log.debug({ err, region_id: String(msg.regionId) }, "raft refused a message");
    }
    this.loop.schedule();
  }

  async onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    if (!this.started || this.stopped) throw new StoreStoppedError(this.storeId);
    let head: RaftMessage | undefined;
    const data = (async function* () {
      for await (const chunk of chunks) {
        if (!head) {
          if (!chunk.message) throw new Error("snapshot stream: the first chunk carries no message");
          head = chunk.message;
          continue;
        }
        yield chunk.data;
      }
    })();
    // Pull the head chunk first so we know where to save the data.
    const first = await data.next();
    if (!head) throw new Error("snapshot stream ended before its first chunk");
    const key = snapKeyOf(head);
    async function* rest() {
      if (!first.done) yield first.value;
      yield* data;
    }
    await this.snaps.receive(key, rest());
    this.onRaftMessage(head);
  }

  private snapshotSource(msg: RaftMessage): AsyncIterable<Buffer> {
    return this.snaps.readGenerated(snapKeyOf(msg));
  }

  /** Messages for regions whose uninitialized peer is being created (its raft state is loading). */
  private readonly creating = new Map<bigint, RaftMessage[]>();

  /**
   * A message for a region this store has no peer of may create an uninitialized one that waits
   * for a snapshot. Its persisted term and vote are loaded first: a peer that voted before a
   * restart must not vote again in the same term. Messages arriving meanwhile wait with it.
   */
  private maybeCreatePeer(msg: RaftMessage): void {
    if (!isInitialMessage(msg.message!)) return;
    const waiting = this.creating.get(msg.regionId);
    if (waiting) {
      waiting.push(msg);
      return;
    }
    if (!this.mayCreatePeer(msg)) return;
    this.creating.set(msg.regionId, [msg]);
    void this.persistedHardState(msg.regionId)
      .then((hardState) => {
        const queued = this.creating.get(msg.regionId) ?? [];
        this.creating.delete(msg.regionId);
        if (this.stopped || this.peers.has(msg.regionId) || !this.mayCreatePeer(msg)) return queued;
        const region: Region = { id: msg.regionId, startKey: Buffer.alloc(0), endKey: Buffer.alloc(0), regionEpoch: { confVer: 0n, version: 0n }, peers: [] };
        const raftState = RaftLocalState.create({ hardState: { term: hardState.term, vote: hardState.vote, commit: 0n } });
        const storage = new PeerStorage(region, raftState, RaftApplyState.create({ truncatedState: { index: 0n, term: 0n } }), []);
        this.addPeer(new Peer(this.storeId, msg.toPeer!, storage, this.config));
        this.log.info({ region_id: String(msg.regionId), peer_id: String(msg.toPeer!.id), term: String(hardState.term) }, "created uninitialized peer from a message");
        return queued;
      })
      .then((queued) => {
        for (const m of queued) this.onRaftMessage(m);
      })
      .catch((err: unknown) => {
        this.creating.delete(msg.regionId);
        this.log.error({ err, region_id: String(msg.regionId) }, "could not load the raft state of a new peer; its messages are dropped");
      });
  }

  private mayCreatePeer(msg: RaftMessage): boolean {
    const tomb = this.tombstones.get(msg.regionId);
    if (tomb && !isEpochStale(tomb, msg.regionEpoch!)) return false; // late message for a region we left
    return !this.overlapsExisting(msg.regionId, msg.startKey, msg.endKey);
  }

  /** The term and vote this store last persisted for a region (zero when it never had a peer of it). */
  async persistedHardState(regionId: bigint): Promise<HardState> {
    const buf = await this.opts.raft.getMeta(raftStateKey(regionId));
    return (buf ? RaftLocalState.decode(buf).hardState : undefined) ?? HardState.create();
  }

  /**
   * Snapshots accepted but not installed yet, by region: their ranges count as taken, so two
   * overlapping snapshots of different regions are never both on their way in. An entry that
   * is never installed (raft found the snapshot stale) lapses after a minute.
   */
  private readonly pendingSnapshots = new Map<bigint, { region: Region; until: number }>();

  snapshotInstalled(regionId: bigint): void {
    this.pendingSnapshots.delete(regionId);
  }

  /** True when [start, end) overlaps an initialized region, or an incoming snapshot, of another id on this store. */
  overlapsExisting(regionId: bigint, start: Buffer, end: Buffer): boolean {
    const overlaps = (r: Region) =>
      (r.endKey.length === 0 || compareBytes(start, r.endKey) < 0) && (end.length === 0 || compareBytes(r.startKey, end) < 0);
    for (const p of this.peers.values()) {
      if (p.regionId !== regionId && p.storage.isInitialized() && overlaps(p.region)) return true;
    }
    const now = Date.now();
    for (const [id, pending] of this.pendingSnapshots) {
      if (pending.until < now) this.pendingSnapshots.delete(id);
      else if (id !== regionId && overlaps(pending.region)) return true;
    }
    return false;
  }

  private snapshotAcceptable(peer: Peer, m: Message): boolean {
    const snap = m.snapshot;
    if (!snap?.metadata) return false;
    const region = RaftSnapshotData.decode(snap.data).region;
    if (!region) return false;
    if (!region.peers.some((p) => p.id === peer.meta.id)) {
      this.log.info({ region_id: String(region.id), peer_id: String(peer.meta.id) }, "dropping a snapshot whose region does not include this peer");
      return false;
    }
    if (this.overlapsExisting(region.id, region.startKey, region.endKey)) {
      this.log.info({ region_id: String(region.id) }, "dropping a snapshot that overlaps another region here");
      return false;
    }
    if (!this.snaps.hasReceived(snapKeyOf({ regionId: peer.regionId, message: m } as RaftMessage))) return false;
    this.pendingSnapshots.set(region.id, { region, until: Date.now() + 60_000 });
    return true;
  }

  private sendTombstone(peer: Peer, msg: RaftMessage): void {
    this.transport.send({
      regionId: peer.regionId,
      fromPeer: peer.meta,
      toPeer: msg.fromPeer,
      message: { ...msg.message!, msgType: MessageType.MsgHeartbeat, entries: [], snapshot: undefined },
      regionEpoch: peer.region.regionEpoch,
      isTombstone: true,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
    });
  }

  /** The region meta of every initialized peer (for EpochNotMatch answers and status). */
  regions(): Region[] {
    return [...this.peers.values()].filter((p) => p.storage.isInitialized()).map((p) => p.region);
  }

  peerMeta(regionId: bigint): PeerMeta | undefined {
    return this.peers.get(regionId)?.meta;
  }
}

export function snapKeyOf(msg: RaftMessage): SnapKey {
  const md = msg.message!.snapshot!.metadata!;
  return { regionId: msg.regionId, term: md.term, index: md.index };
}
