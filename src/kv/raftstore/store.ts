import { ErrProposalDropped, SnapshotStatus } from "../../raft/index.js";
import { ConfChange, ConfChangeType } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta, Region, RegionEpoch } from "../../proto/metapb.js";
import { AdminCmdType, RaftCmdRequest, RaftCmdResponse, type RaftRequestHeader } from "../../proto/raft_cmdpb.js";
import { PeerState, RegionLocalState, type RaftMessage, type SnapshotChunk } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import { realRuntime, type Runtime, type TimerHandle } from "../../util/runtime.js";
import type { Engine } from "../engine/index.js";
import type { RaftMessageSink, RaftTransport, SnapshotSource, TransportEvents } from "../transport/transport.js";
import type { RaftstoreConfig } from "./config.js";
import { checkKeysInRegion, checkRegionEpoch } from "./epoch.js";
import { errorResponse, regionErrors } from "./errors.js";
import { REGION_META_MAX_KEY, REGION_META_MIN_KEY } from "./keys.js";
import { Inbox, snapKeyOf } from "./inbox.js";
import { Peer, type ReadOutcome } from "./peer.js";
import { tickRetiring } from "./retire.js";
import { PeerStorage } from "./peer-storage.js";
import { SnapManager } from "./snap.js";
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
  /** Time, timers and randomness (default: the real ones). */
  runtime?: Runtime;
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
  /** Regions whose peer here was destroyed, as they were at that time. */
  readonly tombstones = new Map<bigint, Region>();
  readonly snaps: SnapManager;
  readonly transport: RaftTransport;
  readonly loop: StoreLoop;
  private readonly inbox: Inbox;
  readonly log: Logger;
  readonly runtime: Runtime;
  private tickTimer: TimerHandle | undefined;
  private ticks = 0;
  private splitCheck: Promise<void> | undefined;
  /** Set once every region is loaded: until then messages and requests are refused. */
  private started = false;
  stopped = false;

  constructor(readonly opts: StoreOptions) {
    this.storeId = opts.storeId;
    this.runtime = opts.runtime ?? realRuntime;
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
    this.inbox = new Inbox(this);
  }

  get config(): RaftstoreConfig {
    return this.opts.config;
  }

  /** Loads every region of this store from the kv engine and starts ticking. */
  async start(): Promise<void> {
    this.snaps.removeAllReceived();
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
        this.tombstones.set(region.id, region);
        continue;
      }
      const meta = region.peers.find((p) => p.storeId === this.storeId);
      if (!meta) {
        // This store applied its own removal and crashed before destroying the peer: treat the
        // region as left, so late messages for the old peer cannot create a new one.
        this.log.warn({ region_id: String(region.id) }, "region state without a peer on this store: treating it as removed");
        this.tombstones.set(region.id, region);
        continue;
      }
      const storage = await PeerStorage.load(this.opts.kv, this.opts.raft, region);
      if (this.config.deliberateBugs?.has("forget-vote-on-restart") && storage.raftState.hardState) storage.raftState.hardState.vote = 0n;
      this.addPeer(new Peer(this.storeId, meta, storage, this.config, this.runtime));
    }
    this.started = true;
    this.log.info({ regions: this.peers.size }, "store started");
    this.tickTimer = this.runtime.setInterval(() => this.onTick(), this.config.raftBaseTickMs);
    this.loop.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.runtime.clearInterval(this.tickTimer);
    await this.loop.idle();
    await this.splitCheck;
    await this.loop.backgroundIdle();
    for (const peer of this.peers.values()) peer.failAll(regionErrors.other(`store ${this.storeId} is stopping`));
    await this.transport.close();
  }

  addPeer(peer: Peer): void {
    this.peers.set(peer.regionId, peer);
  }

  /** Ticks since start (the store's clock for per-peer chores). */
  get tickCount(): number {
    return this.ticks;
  }

  private onTick(): void {
    if (this.stopped) return;
    this.ticks++;
    const now = this.runtime.now();
    const gcEvery = Math.max(1, Math.round(this.config.raftLogGcTickMs / this.config.raftBaseTickMs));
    const hbEvery = Math.max(1, Math.round(this.config.schedulerHeartbeatTickMs / this.config.raftBaseTickMs));
    const splitEvery = Math.max(1, Math.round(this.config.splitRegionCheckTickMs / this.config.raftBaseTickMs));
    for (const peer of this.peers.values()) {
      if (this.loop.isBusy(peer)) continue; // frozen while its snapshot installs
      peer.raw.tick();
      if (peer.retiring && tickRetiring(this, peer, this.ticks)) this.loop.destroyLater(peer);
      peer.expireReads(now);
      if (this.ticks % gcEvery === 0) maybeCompactLog(this, peer);
      if (this.ticks % hbEvery === 0 && peer.isLeader() && !peer.retiring) this.opts.hooks?.onRegionHeartbeat?.(peer);
    }
    if (this.ticks % gcEvery === 0) this.inbox.expirePendingSnapshots(now);
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
    if (peer.retiring) return errorResponse(regionErrors.notLeader(regionId), peer.term); // removed: leads only to hand over
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
      peer.readBatch.push({ deadline: this.runtime.now() + this.config.requestTimeoutMs, req, done: resolve });
      this.loop.schedule();
    });
  }

  // ---- raft messages from other stores ----

  onRaftMessage(msg: RaftMessage): void {
    // Before start() has loaded every region a message could create a duplicate, empty peer.
    if (!this.started || this.stopped) return;
    try {
      this.inbox.onRaftMessage(msg);
    } catch (err) {
      // A bug in handling one message must not take the whole store (or process) down with it.
      this.log.error({ err, region_id: String(msg.regionId) }, "handling a raft message failed; it is dropped");
    }
  }

  async onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    if (!this.started || this.stopped) throw new StoreStoppedError(this.storeId);
    await this.inbox.onSnapshot(chunks);
  }

  private sendingSnapshots = 0;

  private async *snapshotSource(msg: RaftMessage): AsyncGenerator<Buffer> {
    this.sendingSnapshots++;
    try {
      yield* this.snaps.readGenerated(snapKeyOf(msg));
    } finally {
      this.sendingSnapshots--;
    }
  }

  /** Snapshots on their way out, on their way in (received or receiving, not installed) and installing: for store heartbeats. */
  snapshotCounts(): { sending: number; receiving: number; applying: number } {
    return { sending: this.sendingSnapshots, receiving: this.inbox.incomingSnapshots(), applying: this.loop.worker.installing() };
  }

  /** True when [start, end) overlaps an initialized region, or an incoming snapshot, of another id on this store. */
  overlapsExisting(regionId: bigint, start: Buffer, end: Buffer): boolean {
    return this.inbox.overlapsExisting(regionId, start, end);
  }

  snapshotInstalled(regionId: bigint): void {
    this.inbox.snapshotInstalled(regionId);
  }

  /** While a destroyed peer's data is being cleared, its id and range are not to be reused. */
  reserveForDestroy(regionId: bigint, region: Region | undefined): void {
    this.inbox.reserveForDestroy(regionId, region);
  }

  releaseDestroyed(regionId: bigint): void {
    this.inbox.releaseDestroyed(regionId);
  }

  /** The region meta of every initialized peer (for EpochNotMatch answers and status). */
  regions(): Region[] {
    return [...this.peers.values()].filter((p) => p.storage.isInitialized()).map((p) => p.region);
  }

  peerMeta(regionId: bigint): PeerMeta | undefined {
    return this.peers.get(regionId)?.meta;
  }
}
