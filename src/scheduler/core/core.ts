import type { Region } from "../../proto/metapb.js";
import { Cluster, Store, StoreState } from "../../proto/metapb.js";
import type { OperatorStatus, RegionHeartbeatRequest, RequestHeader, StoreStats } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import type { Clock } from "./cluster.js";
import { ClusterModel } from "./cluster.js";
import type { CoordinatorOptions } from "../schedule/coordinator.js";
import { Coordinator } from "../schedule/coordinator.js";
import { ClusterIdMismatchError, InvalidRequestError, SchedulerError, StaleRegionError } from "../errors.js";
import { IdAllocator } from "./id-allocator.js";
import type { MetaKV } from "./meta-kv.js";
import { MetaStorage } from "./meta-storage.js";
import { OperatorController } from "../schedule/operator-controller.js";
import { kindString } from "../schedule/operator.js";
import { RegionFlusher } from "./region-flusher.js";
import type { RegionInfo } from "./region-info.js";
import { epochOf, isEpochStale, newRegionInfo, sizeFromBytes } from "./region-info.js";
import type { StoreInfo } from "./store-info.js";
import { storeToRegister, storeWithState } from "./store-changes.js";
import type { StoreLimitOptions } from "../schedule/store-limit.js";
import type { TsoTimestamp } from "../tso/tso.js";
import { TimestampOracle } from "../tso/tso.js";
import { compareBytes } from "../../util/bytes.js";

/**
 * Why a heartbeat's region cannot be stored, or undefined when it can: the range tree and the
 * per-store statistics assume start < end (or an empty end) and at most one peer per store.
 */
function malformedRegion(r: Region): string | undefined {
  if (r.endKey.length > 0 && compareBytes(r.startKey, r.endKey) >= 0) return "start key is not before end key";
  const stores = new Set<bigint>();
  const ids = new Set<bigint>();
  for (const p of r.peers) {
    if (stores.has(p.storeId)) return `two peers on store ${p.storeId}`;
    if (ids.has(p.id)) return `two peers with id ${p.id}`;
    stores.add(p.storeId);
    ids.add(p.id);
  }
  return undefined;
}

export interface CoreOptions {
  /** Time, timers and randomness (default: the real ones); `clock` and `rng` override parts of it. */
  runtime?: Runtime;
  clock?: Clock;
  rng?: () => number;
  log?: Logger;
  /** max_peer_count written at bootstrap (TinyKV max-replicas, 3). */
  maxReplicas?: number;
  idStep?: bigint;
  tsoSaveWindowMs?: number;
  maxStoreDownTimeMs?: number;
  coordinator?: CoordinatorOptions;
  /** Per-store rate limit on peers added and removed by operators. */
  storeLimit?: StoreLimitOptions;
  /** Region metadata is flushed to disk at most this often, ms. */
  regionFlushMs?: number;
}

/**
 * Everything the Scheduler service does, without gRPC: cluster id and bootstrap, ids, TSO, stores,
 * region heartbeats and routing, split ids, config, GC safe point, operators.
 * Methods throw SchedulerError (header errors), ClusterIdMismatchError or InvalidRequestError.
 */
export class SchedulerCore {
  readonly cluster: ClusterModel;
  readonly oc: OperatorController;
  readonly coordinator: Coordinator;
  /** Requests served since start, for the metrics (counted where they are handled). */
  readonly served = { regionHeartbeats: 0, storeHeartbeats: 0, tsoRequests: 0, timestamps: 0 };
  private config: Cluster | undefined;
  private gcSafePoint = 0n;
  private readonly runtime: Runtime;
  private readonly regionFlusher: RegionFlusher;
  private closed = false;
  private metaLock: Promise<void> = Promise.resolve();

  private constructor(
    readonly clusterId: bigint,
    private readonly storage: MetaStorage,
    readonly ids: IdAllocator,
    readonly tso: TimestampOracle,
    private readonly log: Logger,
    private readonly opts: CoreOptions,
  ) {
    this.runtime = opts.runtime ?? realRuntime;
    this.cluster = new ClusterModel({
      clock: opts.clock,
      rng: opts.rng ?? (() => this.runtime.random()),
      maxStoreDownTimeMs: opts.maxStoreDownTimeMs,
      maxReplicas: opts.maxReplicas ?? 3,
    });
    this.oc = new OperatorController(this.cluster.clock, log, opts.storeLimit);
    this.coordinator = new Coordinator(this.cluster, this.oc, ids, { log, runtime: this.runtime, ...opts.coordinator });
    this.regionFlusher = new RegionFlusher(storage, this.runtime, log);
  }

  /** Loads (or creates) the cluster id and all metadata, reserves ids and a TSO window. */
  static async open(kv: MetaKV, opts: CoreOptions = {}): Promise<SchedulerCore> {
    const log = opts.log ?? silentLogger;
    const runtime = opts.runtime ?? realRuntime;
    const clock = opts.clock ?? (() => runtime.now());
    const storage = new MetaStorage(kv);
    let clusterId = await storage.loadClusterId();
    if (clusterId === undefined) {
      clusterId = (BigInt(Math.floor(clock() / 1000)) << 32n) + BigInt(Math.floor(runtime.random() * 2 ** 32));
      await storage.saveClusterId(clusterId);
      log.info({ cluster_id: clusterId.toString() }, "created new cluster id");
    }
    const ids = new IdAllocator((end) => storage.saveAllocEnd(end), await storage.loadAllocEnd(), opts.idStep ?? 1000n);
    const tso = new TimestampOracle((ms) => storage.saveTsoHighWater(ms), {
      clock,
      saveWindowMs: opts.tsoSaveWindowMs,
      onPersistError: (err) => log.error({ err }, "persisting the tso window failed"),
    });
    await tso.init(await storage.loadTsoHighWater());
    const core = new SchedulerCore(clusterId, storage, ids, tso, log, { ...opts, clock });
    await core.load();
    return core;
  }

  private async load(): Promise<void> {
    this.config = await this.storage.loadCluster();
    if (this.config) this.cluster.maxReplicas = this.config.maxPeerCount || this.cluster.maxReplicas;
    for (const s of await this.storage.loadStores()) this.cluster.putStore(s);
    for (const r of await this.storage.loadRegions()) this.cluster.putRegionRaw(newRegionInfo(r));
    for (const s of this.cluster.getStores()) this.cluster.updateStoreStatus(s.id);
    this.gcSafePoint = await this.storage.loadGcSafePoint();
    await this.ids.reserve(1n);
    this.log.info(
      {
        cluster_id: this.clusterId.toString(),
        bootstrapped: this.isBootstrapped(),
        stores: this.cluster.getStores().length,
        regions: this.cluster.regions.size,
      },
      "scheduler metadata loaded",
    );
  }

  /** Starts background work: the scheduling loop and the region metadata flusher. */
  start(): void {
    this.coordinator.start();
    this.regionFlusher.start(this.opts.regionFlushMs ?? 1000);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.coordinator.stop();
    await this.regionFlusher.stop();
    await this.storage.close();
  }

  // ---- checks ----

  checkHeader(header: RequestHeader | undefined): void {
    const got = header?.clusterId ?? 0n;
    if (got !== this.clusterId) throw new ClusterIdMismatchError(this.clusterId, got);
  }

  isBootstrapped(): boolean {
    return this.config !== undefined;
  }

  private requireBootstrapped(): void {
    if (!this.config) throw SchedulerError.notBootstrapped();
  }

  // ---- bootstrap, ids, tso ----

  /** Runs metadata mutations one at a time, so check-then-write sequences cannot interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.metaLock.then(fn);
    this.metaLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  bootstrap(store: Store | undefined): Promise<void> {
    return this.serial(() => this.doBootstrap(store));
  }

  private async doBootstrap(store: Store | undefined): Promise<void> {
    if (this.config) throw SchedulerError.alreadyBootstrapped();
    if (!store || store.id === 0n) throw new InvalidRequestError("bootstrap: missing store or store id 0");
    const config = Cluster.create({ id: this.clusterId, maxPeerCount: this.cluster.maxReplicas });
    const meta = Store.create({ ...store, state: StoreState.Up });
    await this.storage.saveBootstrap(config, meta, this.cluster.clock());
    this.config = config;
    this.cluster.putStore(meta);
    this.log.info({ store_id: store.id.toString(), address: store.address }, "cluster bootstrapped");
  }

  allocId(): Promise<bigint> {
    return this.ids.alloc();
  }

  nextTimestamp(count: number): Promise<TsoTimestamp> {
    this.served.tsoRequests++;
    this.served.timestamps += count;
    return this.tso.next(count);
  }

  // ---- stores ----

  getStore(storeId: bigint): StoreInfo {
    this.requireBootstrapped();
    const s = this.cluster.getStore(storeId);
    if (!s) throw new InvalidRequestError(`invalid store ID ${storeId}, not found`);
    return s;
  }

  putStore(store: Store | undefined): Promise<void> {
    return this.serial(() => this.doPutStore(store));
  }

  private async doPutStore(store: Store | undefined): Promise<void> {
    this.requireBootstrapped();
    const meta = storeToRegister(this.cluster, store);
    await this.storage.saveStore(meta);
    this.cluster.putStore(meta);
    this.log.info(
      { store_id: meta.id.toString(), address: meta.address, status_address: meta.statusAddress },
      "store registered",
    );
  }

  /**
   * Sets a store's state (operators' tool: offline a store to drain it, tombstone a drained one).
   * As PD, only an offline store that holds no region may become a tombstone: anything else would
   * drop replicas the scheduler can no longer move.
   */
  setStoreState(storeId: bigint, state: StoreState): Promise<void> {
    return this.serial(() => this.doSetStoreState(storeId, state));
  }

  private async doSetStoreState(storeId: bigint, state: StoreState): Promise<void> {
    const meta = storeWithState(this.cluster, this.getStore(storeId), state);
    await this.storage.saveStore(meta);
    this.cluster.putStore(meta);
    this.log.info({ store_id: storeId.toString(), state: StoreState[state] }, "store state changed");
  }

  getAllStores(excludeTombstone: boolean): Store[] {
    this.requireBootstrapped();
    return this.cluster
      .getStores()
      .filter((s) => !(excludeTombstone && s.isTombstone()))
      .map((s) => Store.create(s.meta));
  }

  storeHeartbeat(stats: StoreStats | undefined): void {
    this.requireBootstrapped();
    if (!stats) throw new InvalidRequestError("store heartbeat without stats");
    const s = this.cluster.getStore(stats.storeId);
    if (!s) throw new InvalidRequestError(`store ${stats.storeId} not found`);
    if (s.isTombstone()) throw SchedulerError.storeTombstone(stats.storeId);
    this.cluster.storeHeartbeat(stats);
    this.served.storeHeartbeats++;
  }

  // ---- regions ----

  /**
   * Processes one region heartbeat. Returns the leader's store id (the stream to bind).
   * Throws InvalidRequestError for an unknown leader store (the stream must end) and
   * SchedulerError for per-heartbeat problems (answered on the stream, which continues).
   */
  leaderStoreOf(req: RegionHeartbeatRequest): StoreInfo {
    this.requireBootstrapped();
    const storeId = req.leader?.storeId ?? 0n;
    const store = this.cluster.getStore(storeId);
    if (!store) throw new InvalidRequestError(`invalid store ID ${storeId}, not found`);
    return store;
  }

  handleRegionHeartbeat(req: RegionHeartbeatRequest): RegionInfo {
    this.served.regionHeartbeats++;
    const store = this.leaderStoreOf(req);
    if (store.isTombstone()) throw SchedulerError.storeTombstone(store.id);
    if (!req.region || req.region.id === 0n) throw SchedulerError.unknown("invalid request region: region id is 0");
    const malformed = malformedRegion(req.region);
    if (malformed) throw SchedulerError.unknown(`invalid request region ${req.region.id}: ${malformed}`);
    // A leader that has not measured its region yet (just elected) reports 0: keep the last known
    // size, as PD does, so a leader change does not look like data leaving the stores.
    const reported = sizeFromBytes(req.approximateSize);
    const known = this.cluster.getRegion(req.region.id);
    const region = newRegionInfo(req.region, req.leader, {
      pendingPeers: req.pendingPeers,
      approximateSize: reported === 0 && known ? known.approximateSize : reported,
    });
    let result;
    try {
      result = this.cluster.processRegionHeartbeat(region);
    } catch (err) {
      if (err instanceof StaleRegionError) throw SchedulerError.unknown(err.message);
      throw err;
    }
    this.coordinator.markSeen(region.meta.id);
    if (result.changed) this.regionFlusher.changed(region, result.overlapped);
    if (region.meta.peers.length > 0) this.oc.dispatch(region);
    return region;
  }

  getRegionByKey(key: Uint8Array): RegionInfo | undefined {
    this.requireBootstrapped();
    return this.cluster.getRegionByKey(key);
  }

  getPrevRegion(key: Uint8Array): RegionInfo | undefined {
    this.requireBootstrapped();
    return this.cluster.getPrevRegion(key);
  }

  getRegionById(id: bigint): RegionInfo | undefined {
    this.requireBootstrapped();
    return this.cluster.getRegion(id);
  }

  scanRegions(start: Uint8Array, end: Uint8Array, limit: number): RegionInfo[] {
    this.requireBootstrapped();
    return this.cluster.scanRegions(start, end, limit);
  }

  /** Allocates the new region id and one new peer id per existing peer for a split. */
  async askSplit(region: Region | undefined): Promise<{ newRegionId: bigint; newPeerIds: bigint[] }> {
    this.requireBootstrapped();
    if (!region) throw new InvalidRequestError("ask split: missing region");
    const known = this.cluster.getRegionByKey(region.startKey);
    if (!known) throw new InvalidRequestError(`region not found for start key of region ${region.id}`);
    if (isEpochStale(region.regionEpoch ?? { version: 0n, confVer: 0n }, epochOf(known))) {
      throw new InvalidRequestError(`invalid region epoch for region ${region.id}`);
    }
    const newRegionId = await this.ids.alloc();
    const newPeerIds: bigint[] = [];
    for (let i = 0; i < region.peers.length; i++) newPeerIds.push(await this.ids.alloc());
    return { newRegionId, newPeerIds };
  }

  // ---- config, gc, operators ----

  getClusterConfig(): Cluster {
    this.requireBootstrapped();
    return Cluster.create(this.config);
  }

  putClusterConfig(c: Cluster | undefined): Promise<void> {
    return this.serial(() => this.doPutClusterConfig(c));
  }

  private async doPutClusterConfig(c: Cluster | undefined): Promise<void> {
    this.requireBootstrapped();
    if (!c || c.maxPeerCount <= 0)
      throw new InvalidRequestError("cluster config needs max_peer_count > 0", "invalid_argument");
    const next = Cluster.create({ id: this.clusterId, maxPeerCount: c.maxPeerCount });
    await this.storage.saveCluster(next);
    this.config = next;
    this.cluster.maxReplicas = next.maxPeerCount;
  }

  getGcSafePoint(): bigint {
    this.requireBootstrapped();
    return this.gcSafePoint;
  }

  async updateGcSafePoint(sp: bigint): Promise<bigint> {
    this.requireBootstrapped();
    if (sp > this.gcSafePoint) {
      await this.storage.saveGcSafePoint(sp);
      if (sp > this.gcSafePoint) this.gcSafePoint = sp;
    }
    return this.gcSafePoint;
  }

  getOperator(regionId: bigint): { desc: string; kind: string; status: OperatorStatus } | undefined {
    this.requireBootstrapped();
    const s = this.oc.getStatus(regionId);
    if (!s) return undefined;
    return { desc: s.op.describe(), kind: kindString(s.op.kind), status: s.status };
  }

  /** Writes changed region metadata (not synced: heartbeats rebuild it anyway). */
  flushRegions(): Promise<void> {
    return this.regionFlusher.flush();
  }
}
