import { SnapshotStatus } from "../../raft/index.js";
import type { Peer as PeerMeta, Region, RegionEpoch } from "../../proto/metapb.js";
import type { RaftCmdResponse, RaftRequestHeader } from "../../proto/raft_cmdpb.js";
import { AdminCmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { Engine, FileLayer } from "../engine/index.js";
import type { RaftMessageSink, RaftTransport, SnapshotSource, TransportEvents } from "../transport/transport.js";
import type { RaftstoreConfig } from "./config.js";
import { errorResponse, regionErrors } from "./errors.js";
import { Inbox, snapKeyOf } from "./inbox.js";
import type { ReadOutcome } from "./peer.js";
import { Peer } from "./peer.js";
import { createSplitPeer, loadPeers } from "./peer-lifecycle.js";
import { tickRetiring } from "./retire.js";
import { RegionWorker } from "./region-worker.js";
import { SnapManager } from "./snap.js";
import type { LoopContext } from "./store-loop.js";
import { StoreLoop } from "./store-loop.js";
import type { RaftstoreObserver } from "./observer.js";
import { NO_OBSERVER } from "./observer.js";
import { maybeCompactLog, runSplitChecks } from "./housekeeping.js";
import type { ReadMode } from "./replica-reads.js";
import { ReplicaReadCounters, staleRead } from "./replica-reads.js";

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
  /** Where snapshot files are written (default: the real file system). */
  snapFiles?: FileLayer;
  config: RaftstoreConfig;
  log: Logger;
  makeTransport(source: SnapshotSource, events: TransportEvents): RaftTransport;
  hooks?: StoreHooks;
  /** Time, timers and randomness (default: the real ones). */
  runtime?: Runtime;
  /** Called once the store has stopped itself after a disk error (a process exits on it). */
  onFatal?: (err: unknown) => void;
  /** Told the stages of writes and turns (metrics, slow log); default: nobody. */
  observer?: RaftstoreObserver;
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
  readonly worker: RegionWorker;
  readonly loop: StoreLoop;
  readonly kv: Engine;
  readonly raftEngine: Engine;
  readonly config: RaftstoreConfig;
  private readonly inbox: Inbox;
  readonly log: Logger;
  readonly runtime: Runtime;
  readonly observer: RaftstoreObserver;
  /** Who served replica and stale reads (replica-reads.ts), for metrics. */
  readonly replicaReads = new ReplicaReadCounters();
  private readonly hooks: StoreHooks;
  private tickTimer: TimerHandle | undefined;
  private ticks = 0;
  private splitCheck: Promise<void> | undefined;
  /** Set once every region is loaded: until then messages and requests are refused. */
  private started = false;
  private stopping = false;
  /** Monotonic ms when start() began: peers created soon after hold their votes (peer-lifecycle.ts). */
  startedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: StoreOptions) {
    this.storeId = options.storeId;
    this.kv = options.kv;
    this.raftEngine = options.raft;
    this.config = options.config;
    this.hooks = options.hooks ?? {};
    this.runtime = options.runtime ?? realRuntime;
    this.observer = options.observer ?? NO_OBSERVER;
    this.log = options.log.child({ store_id: String(options.storeId) });
    this.snaps = new SnapManager(options.snapDir, options.snapFiles);
    this.transport = options.makeTransport((msg) => this.snapshotSource(msg), {
      onUnreachable: (msg) => this.peers.get(msg.regionId)?.handle({ type: "unreachable", toPeerId: msg.toPeer!.id }),
      onSnapshotStatus: (msg, ok) => {
        this.peers.get(msg.regionId)?.handle({
          type: "snapshotStatus",
          toPeerId: msg.toPeer!.id,
          status: ok ? SnapshotStatus.Finish : SnapshotStatus.Failure,
        });
      },
    });
    this.worker = new RegionWorker(this, () => this.loop.schedule());
    this.loop = new StoreLoop(this.loopContext());
    this.inbox = new Inbox(this);
  }

  get stopped(): boolean {
    return this.stopping;
  }

  private loopContext(): LoopContext {
    const store = this;
    return {
      get stopped() {
        return store.stopping;
      },
      log: this.log,
      config: this.config,
      runtime: this.runtime,
      observer: this.observer,
      kv: this.kv,
      raftEngine: this.raftEngine,
      peers: this.peers,
      transport: this.transport,
      worker: this.worker,
      get tickCount() {
        return store.ticks;
      },
      createSplitPeer: (parent, region) => this.startSplitPeer(parent, region),
      regionChanged: (peer) => this.hooks.onRegionHeartbeat?.(peer),
      fail: (err) => this.fail(err),
    };
  }

  /** Loads every region of this store from the kv engine and starts ticking. */
  async start(): Promise<void> {
    this.startedAt = this.runtime.monotonicNow();
    this.snaps.removeAllReceived();
    const { peers, tombstones, left } = await loadPeers(this);
    for (const region of tombstones) this.tombstones.set(region.id, region);
    for (const peer of peers) this.addPeer(peer);
    // Removals applied before a crash whose destroy did not finish: finish it before serving.
    for (const storage of left) await this.worker.clearLeft(storage);
    this.started = true;
    this.log.info({ regions: this.peers.size }, "store started");
    this.tickTimer = this.runtime.setInterval(() => this.onTick(), this.config.raftBaseTickMs);
    this.loop.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.runtime.clearInterval(this.tickTimer);
    await this.loop.idle();
    await this.splitCheck;
    await this.worker.idle();
    for (const peer of this.peers.values()) peer.failAll(regionErrors.other(`store ${this.storeId} is stopping`));
    await this.transport.close();
  }

  /**
   * The disk failed under the store loop: raft and disk may be out of step, so the store stops
   * serving, and whoever runs it is told (tinykv-server exits rather than linger answering
   * errors while the scheduler still counts it as up).
   */
  private async fail(err: unknown): Promise<void> {
    await this.stop();
    this.options.onFatal?.(err);
  }

  /** Wakes the store loop: a peer has something for its next turn. */
  wake(soon?: boolean): void {
    this.loop.schedule(soon);
  }

  addPeer(peer: Peer): void {
    this.peers.set(peer.regionId, peer);
  }

  /** A split created a region with a peer here: start it; the parent's leader campaigns at once so it serves without an election timeout. */
  private async startSplitPeer(parent: Peer, region: Region): Promise<void> {
    const peer = await createSplitPeer(this, parent, region);
    if (!peer) return;
    this.addPeer(peer);
    if (parent.isLeader()) peer.handle({ type: "campaign" });
    this.hooks.onRegionHeartbeat?.(peer);
  }

  /** Ticks since start (the store's clock for per-peer chores). */
  get tickCount(): number {
    return this.ticks;
  }

  private onTick(): void {
    if (this.stopping) return;
    this.ticks++;
    const now = this.runtime.now();
    const gcEvery = Math.max(1, Math.round(this.config.raftLogGcTickMs / this.config.raftBaseTickMs));
    const hbEvery = Math.max(1, Math.round(this.config.schedulerHeartbeatTickMs / this.config.raftBaseTickMs));
    const splitEvery = Math.max(1, Math.round(this.config.splitRegionCheckTickMs / this.config.raftBaseTickMs));
    for (const peer of this.peers.values()) {
      if (this.loop.isBusy(peer)) continue; // frozen while its snapshot installs
      peer.handle({ type: "tick", now });
      if (peer.retiring && tickRetiring(this, peer, this.ticks)) this.loop.destroyLater(peer);
      if (this.ticks % gcEvery === 0) maybeCompactLog(this, peer);
      if (this.ticks % hbEvery === 0 && peer.isLeader() && !peer.retiring) this.hooks.onRegionHeartbeat?.(peer);
    }
    if (this.ticks % gcEvery === 0) this.inbox.expirePendingSnapshots(now);
    const onSplitKey = this.hooks.onSplitKey;
    if (onSplitKey && this.ticks % splitEvery === 0 && !this.splitCheck) {
      this.splitCheck = runSplitChecks(this, onSplitKey).finally(() => (this.splitCheck = undefined));
    }
    this.loop.schedule();
  }

  /** Proposes a split with ids from the scheduler; the region must still be at `epoch`. */
  proposeSplit(
    regionId: bigint,
    epoch: RegionEpoch,
    splitKey: Buffer,
    newRegionId: bigint,
    newPeerIds: bigint[],
  ): Promise<RaftCmdResponse> {
    const peer = this.peers.get(regionId);
    return this.propose(
      RaftCmdRequest.fromPartial({
        header: { regionId, peer: peer?.meta, regionEpoch: epoch },
        adminRequest: { cmdType: AdminCmdType.Split, split: { splitKey, newRegionId, newPeerIds } },
      }),
    );
  }

  // ---- requests ----

  /** The peer a request for a region goes to; the store's checks, before the peer's own (`Peer.handle`), in TinyKV's order. */
  private route(header: RaftRequestHeader | undefined): Peer | RaftCmdResponse {
    if (this.stopping || !this.started)
      return errorResponse(regionErrors.other(`store ${this.storeId} is not serving (starting or stopping)`));
    const regionId = header?.regionId ?? 0n;
    if (header?.peer && header.peer.storeId !== 0n && header.peer.storeId !== this.storeId) {
      return errorResponse(regionErrors.storeNotMatch(header.peer.storeId, this.storeId));
    }
    const peer = this.peers.get(regionId);
    if (!peer || peer.destroyed) return errorResponse(regionErrors.regionNotFound(regionId));
    return peer;
  }

  /** Proposes a write or an admin command; resolves when it has been applied (or failed). */
  propose(req: RaftCmdRequest): Promise<RaftCmdResponse> {
    const routed = this.route(req.header);
    if (!(routed instanceof Peer)) return Promise.resolve(routed);
    return new Promise((resolve) => routed.handle({ type: "command", req, done: resolve }));
  }

  /**
   * A linearizable read: ReadIndex, then a kv snapshot once apply has caught up; on any peer for
   * a replica read; at once from a peer's safe ts for a stale read (see ReadMode).
   */
  read(header: RaftRequestHeader | undefined, mode: ReadMode = {}): Promise<ReadOutcome> {
    const routed = this.route(header);
    if (!(routed instanceof Peer)) return Promise.resolve({ error: routed.header!.error! });
    const req: RaftCmdRequest = { header, requests: [], adminRequest: undefined };
    if (mode.staleTs !== undefined) {
      // While a snapshot installs, the peer's range in the engine is being replaced: not ready.
      if (this.loop.isBusy(routed))
        return Promise.resolve({
          error: regionErrors.dataIsNotReady(routed.regionId, routed.meta.id, 0n, mode.staleTs),
        });
      return Promise.resolve(staleRead(routed, req, mode.staleTs, this.kv, this.replicaReads));
    }
    const deadline = this.runtime.now() + this.config.requestTimeoutMs;
    const replica = mode.replica === true;
    return new Promise((resolve) =>
      routed.handle({
        type: "read",
        req,
        deadline,
        replica,
        done: (outcome) => {
          if (replica && !("error" in outcome) && !routed.isLeader()) this.replicaReads.followerServed++;
          resolve(outcome);
        },
      }),
    );
  }

  // ---- raft messages from other stores ----

  onRaftMessage(msg: RaftMessage): void {
    // Before start() has loaded every region a message could create a duplicate, empty peer.
    if (!this.started || this.stopping) return;
    try {
      this.inbox.onRaftMessage(msg);
    } catch (err) {
      // A bug in handling one message must not take the whole store (or process) down with it.
      this.log.error({ err, region_id: String(msg.regionId) }, "handling a raft message failed; it is dropped");
    }
  }

  async onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void> {
    if (!this.started || this.stopping) throw new StoreStoppedError(this.storeId);
    let bytes = 0;
    const counted = (async function* () {
      for await (const chunk of chunks) {
        bytes += chunk.data.length;
        yield chunk;
      }
    })();
    let accepted = false;
    try {
      await this.inbox.onSnapshot(counted);
      accepted = true;
    } finally {
      this.observer.snapshotReceived(bytes, accepted);
    }
  }

  private sendingSnapshots = 0;

  private async *snapshotSource(msg: RaftMessage): AsyncGenerator<Buffer> {
    this.sendingSnapshots++;
    let bytes = 0;
    let complete = false;
    try {
      for await (const chunk of this.snaps.readGenerated(snapKeyOf(msg))) {
        bytes += chunk.length;
        yield chunk;
      }
      complete = true;
    } finally {
      this.sendingSnapshots--;
      this.observer.snapshotSent(bytes, complete);
    }
  }

  /** Snapshots on their way out, on their way in (received or receiving, not installed) and installing: for store heartbeats. */
  snapshotCounts(): { sending: number; receiving: number; applying: number } {
    return {
      sending: this.sendingSnapshots,
      receiving: this.inbox.incomingSnapshots(),
      applying: this.worker.installing(),
    };
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
