import type { Region, Store } from "../proto/metapb.js";
import type { SchedulerApi } from "../scheduler/api.js";
import { SchedulerRpcClient } from "../scheduler/client/client.js";
import type { Logger } from "../util/logger.js";
import { silentLogger } from "../util/logger.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import { TlsConfig } from "../util/tls.js";
import type { KvClientOptions } from "./client-options.js";
import { retryPolicyOf, schedulerRetryDeadlineMs } from "./client-options.js";
import { KvRequestError } from "./errors.js";
import { LockResolver } from "./lock-resolver.js";
import type { KvConnectionFactory } from "./kv-connection.js";
import { grpcKvConnectionWith, RegionCache } from "./region-cache.js";
import { batchedKvConnectionWith } from "./kv-batch-rpc.js";
import type { RetryPolicy } from "./request.js";
import { Backoff, RequestSender } from "./request.js";
import type { Bytes, KvEntry, TxnDeps } from "./txn.js";
import { toBuf, Transaction } from "./txn.js";
import { DEFAULT_LOCK_TTL_MS } from "./lock-ttl.js";
import type { WatchDeps, WatchOptions } from "./watch.js";
import type { RawWatchOptions } from "./raw-watch.js";
import { RawWatch } from "./raw-watch.js";
import { ChangeDataConnections, readAllAt, Watch, watchRange } from "./watch.js";
import type { ReadOptions, StaleRead } from "./read-options.js";
import { rawReadOptions, ReadRouting, staleReadTs } from "./read-options.js";
import { KvPair } from "../proto/kvrpcpb.js";
import {
  deleteRangeAcrossRegions,
  RAW_BATCHES_IN_FLIGHT,
  rawBatchDelete,
  rawBatchGet,
  rawBatchPut,
} from "./raw-batch.js";
import { forwardScanAcrossRegions, reverseScanAcrossRegions } from "./raw-scan.js";
import type { CasExpectation, CasResult } from "./raw-cas.js";
import { compareAndSwap, keyTtl } from "./raw-cas.js";

/**
 * The tinykv-ts client: routes requests by key through a region cache fed by the scheduler,
 * retries region errors and unreachable stores with backoff until a deadline, and offers a raw
 * API (get/put/delete/scan across regions) and Percolator transactions (begin()).
 */
export class KvClient {
  readonly cache: RegionCache;
  private readonly sender: RequestSender;
  private readonly resolver: LockResolver;
  private closed = false;
  /** One ChangeData client per store address, for watches. */
  private readonly changeData: ChangeDataConnections;
  /** Watches not yet over: close() stops them. */
  private readonly watches = new Set<{ stop(): void }>();

  private constructor(
    readonly scheduler: SchedulerApi,
    readonly policy: RetryPolicy,
    private readonly txnTime: { ttl: TxnDeps["ttl"]; runtime: Runtime },
    rpcTimeoutMs: number,
    private readonly log: Logger,
    connectKv: KvConnectionFactory,
    tls?: TlsConfig,
  ) {
    this.cache = new RegionCache(scheduler, rpcTimeoutMs, log, connectKv);
    this.changeData = new ChangeDataConnections(tls);
    this.sender = new RequestSender(this.cache, log);
    this.resolver = new LockResolver(this.sender, () => this.tso(), log);
  }

  /** Connects to the scheduler at `opts.scheduler` (gRPC), then routes through it. */
  static async connect(opts: KvClientOptions): Promise<KvClient> {
    const policy = retryPolicyOf(opts);
    const tls = opts.tls && TlsConfig.fromPem(opts.tls);
    const scheduler = await SchedulerRpcClient.connect(opts.scheduler, {
      tls,
      log: opts.log,
      connectDeadlineMs: opts.connectTimeoutMs ?? 10_000,
      retryDeadlineMs: schedulerRetryDeadlineMs(policy),
      runtime: opts.runtime,
    });
    return KvClient.withScheduler(scheduler, { ...opts, tls });
  }

  /**
   * A client over a scheduler connection made elsewhere (e.g. the simulation's in-process one,
   * whose retry deadline should be schedulerRetryDeadlineMs of the policy). close() closes it.
   */
  static withScheduler(scheduler: SchedulerApi, opts: Omit<KvClientOptions, "scheduler">): KvClient {
    const baseMs = opts.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
    const ttl = { baseMs, heartbeatIntervalMs: opts.heartbeatIntervalMs ?? Math.max(1, Math.floor(baseMs / 2)) };
    return new KvClient(
      scheduler,
      retryPolicyOf(opts),
      { ttl, runtime: opts.runtime ?? realRuntime },
      opts.rpcTimeoutMs ?? 3000,
      opts.log ?? silentLogger,
      opts.connectKv ??
        (opts.batchCommands === false
          ? grpcKvConnectionWith(opts.tls && TlsConfig.fromPem(opts.tls))
          : batchedKvConnectionWith(opts.tls && TlsConfig.fromPem(opts.tls))),
      opts.tls && TlsConfig.fromPem(opts.tls),
    );
  }

  private backoff(op: string, key?: Buffer): Backoff {
    if (this.closed) throw new Error(`${op}: client is closed`);
    return new Backoff(op, key, this.policy, this.txnTime.runtime);
  }

  /** A fresh timestamp from the scheduler's TSO. */
  tso(): Promise<bigint> {
    return this.scheduler.tso();
  }

  // ---- raw API -------------------------------------------------------------------------------

  /** One key; with `{ replicaRead: true }` a follower may serve it (still linearizable). */
  async get(key: Bytes, cf = "", opts: ReadOptions = {}): Promise<Buffer | undefined> {
    const k = toBuf(key);
    const routing = new ReadRouting(this.cache, rawReadOptions(opts));
    const { resp, target } = await this.sender.onKey(
      "RawGet",
      k,
      this.backoff("raw get", k),
      (t) => t.rpc.rawGet({ context: t.ctx, key: k, cf }),
      { route: routing.route },
    );
    if (resp.error) throw new KvRequestError("RawGet", target.addr, resp.error);
    return resp.notFound ? undefined : resp.value;
  }

  /**
   * Writes one pair. Retried while it surely did not apply (NotLeader, epoch errors, a store not
   * reached); once it may have (StaleCommand, no answer in time) it throws KvOutcomeUnknownError
   * instead of sending it again.
   */
  async put(key: Bytes, value: Bytes, cf = "", opts: { ttlSeconds?: number } = {}): Promise<void> {
    const k = toBuf(key);
    const v = toBuf(value);
    const { resp, target } = await this.sender.onKey(
      "RawPut",
      k,
      this.backoff("raw put", k),
      (t) => t.rpc.rawPut({ context: t.ctx, key: k, value: v, cf, ttl: BigInt(opts.ttlSeconds ?? 0) }),
      {
        once: true,
      },
    );
    if (resp.error) throw new KvRequestError("RawPut", target.addr, resp.error);
  }

  /** Deletes one key; retried as put() is, and KvOutcomeUnknownError when it may or may not have applied. */
  async delete(key: Bytes, cf = ""): Promise<void> {
    const k = toBuf(key);
    const { resp, target } = await this.sender.onKey(
      "RawDelete",
      k,
      this.backoff("raw delete", k),
      (t) => t.rpc.rawDelete({ context: t.ctx, key: k, cf }),
      {
        once: true,
      },
    );
    if (resp.error) throw new KvRequestError("RawDelete", target.addr, resp.error);
  }

  /**
   * Writes `value` (undefined: deletes the key) only if the key holds `expect.value`, or nothing
   * when `expect.notExist`; atomic with every other raw write. Answers what the key held. Like
   * put, KvOutcomeUnknownError when it may or may not have applied.
   */
  compareAndSwap(
    key: Bytes,
    value: Bytes | undefined,
    expect: { value: Bytes } | { notExist: true },
    opts: { cf?: string; ttlSeconds?: number } = {},
  ): Promise<CasResult> {
    const k = toBuf(key);
    const expectation: CasExpectation = "value" in expect ? { value: toBuf(expect.value) } : expect;
    return compareAndSwap(this.sender, this.backoff("raw compare-and-swap", k), {
      key: k,
      value: value === undefined ? undefined : toBuf(value),
      expect: expectation,
      cf: opts.cf ?? "",
      ttlSeconds: opts.ttlSeconds,
    });
  }

  /** Seconds the key has left: 0 when it never expires, undefined when it is absent or expired. */
  keyTtl(key: Bytes, cf = ""): Promise<number | undefined> {
    const k = toBuf(key);
    return keyTtl(this.sender, this.backoff("raw get key ttl", k), k, cf);
  }

  // ---- raw batch and range calls (raw-batch.ts) ------------------------------------------------
  // Each is split by region and size (RAW_BATCH_KEYS keys or RAW_BATCH_BYTES per sub-batch), with
  // at most `concurrency` sub-batches in flight. A sub-batch is one raft command on its region and
  // applies whole or not at all, but a batch that spans regions is NOT atomic across them: after a
  // failure some sub-batches may have applied. Writes are not sent again once they may have applied
  // (KvOutcomeUnknownError), as put() is.

  /** The values of `keys`, in their order (undefined where a key is not found). */
  batchGet(keys: Bytes[], cf = "", concurrency = RAW_BATCHES_IN_FLIGHT): Promise<(Buffer | undefined)[]> {
    const ks = keys.map(toBuf);
    return rawBatchGet(this.sender, this.backoff("raw batch get", ks[0]), ks, cf, concurrency);
  }

  /**
   * Puts the pairs with RawBatchPut, region by region (see above: not atomic across regions). A
   * pair with `ttlSeconds` expires that long after its region's leader proposes it.
   */
  batchPut(
    pairs: { key: Bytes; value: Bytes; ttlSeconds?: number }[],
    cf = "",
    concurrency = RAW_BATCHES_IN_FLIGHT,
  ): Promise<void> {
    const items = pairs.map((p) => ({
      pair: KvPair.create({ key: toBuf(p.key), value: toBuf(p.value) }),
      ttl: BigInt(p.ttlSeconds ?? 0),
    }));
    return rawBatchPut(this.sender, this.backoff("raw batch put", items[0]?.pair.key), items, cf, concurrency);
  }

  /** Deletes the keys with RawBatchDelete, region by region (see above: not atomic across regions). */
  batchDelete(keys: Bytes[], cf = "", concurrency = RAW_BATCHES_IN_FLIGHT): Promise<void> {
    const ks = keys.map(toBuf);
    return rawBatchDelete(this.sender, this.backoff("raw batch delete", ks[0]), ks, cf, concurrency);
  }

  /**
   * Deletes every key in [start, end) (empty end: to the end of the key space): one
   * RawDeleteRange per region, each one raft command there, regions one after another. Not
   * atomic across regions.
   */
  async deleteRange(start: Bytes, end: Bytes, cf = ""): Promise<void> {
    const s = toBuf(start);
    const e = toBuf(end);
    if (e.length > 0 && Buffer.compare(s, e) >= 0) return;
    await deleteRangeAcrossRegions(this.sender, s, e, cf, this.backoff("raw delete range", s));
  }

  /**
   * Up to `limit` pairs with start <= key < end (empty end = no end) in key order, region by
   * region: each region is scanned up to min(end, region end), then the scan goes on at the
   * region's end key. Not a snapshot across regions.
   *
   * With `reverse` (TiKV's semantics, as RawScan's): `start` is the UPPER bound, exclusive, and
   * `end` the LOWER bound, inclusive; the pairs with end <= key < start come in descending order
   * (empty start = from the very last key, empty end = down to the first).
   */
  async scan(
    start: Bytes,
    end: Bytes,
    limit: number,
    cf = "",
    opts: ReadOptions & { reverse?: boolean } = {},
  ): Promise<KvEntry[]> {
    const s = toBuf(start);
    const e = toBuf(end);
    const routing = new ReadRouting(this.cache, rawReadOptions(opts));
    if (opts.reverse)
      return reverseScanAcrossRegions(this.sender, s, e, limit, cf, routing, this.backoff("raw reverse scan", s));
    return forwardScanAcrossRegions(this.sender, routing, s, e, limit, cf, this.backoff("raw scan", s));
  }

  // ---- transactions --------------------------------------------------------------------------

  /** Starts a transaction reading the snapshot at a fresh TSO timestamp; with `replicaRead` its reads may go to followers. */
  async begin(opts: { replicaRead?: boolean } = {}): Promise<Transaction> {
    if (this.closed) throw new Error("begin: client is closed");
    // Read the clock before asking for start_ts: the TTL then counts from no later than start_ts.
    const startedAtMs = this.txnTime.runtime.now();
    const startTs = await this.tso();
    return new Transaction(this.txnDeps(), startTs, startedAtMs, { replica: opts.replicaRead === true });
  }

  /**
   * A read-only snapshot at a past ts (`{ ts }`, or the TSO's now minus `{ maxStalenessMs }`),
   * served by any replica whose safe ts reaches it, else by the leader.
   */
  async staleSnapshot(stale: StaleRead): Promise<Transaction> {
    if (this.closed) throw new Error("staleSnapshot: client is closed");
    const ts = await staleReadTs(stale, () => this.tso());
    return new Transaction(this.txnDeps(), ts, undefined, { stale: true });
  }

  /** One transactional read of `key` at a fresh ts (or a stale one with `staleRead`), committed data only. */
  async txnGet(key: Bytes, opts: ReadOptions = {}): Promise<Buffer | undefined> {
    const snap = opts.staleRead
      ? await this.staleSnapshot(opts.staleRead)
      : await this.begin({ replicaRead: opts.replicaRead });
    return snap.get(key);
  }

  private txnDeps(): TxnDeps {
    return {
      sender: this.sender,
      resolver: this.resolver,
      tso: () => this.tso(),
      policy: this.policy,
      ...this.txnTime,
      log: this.log,
    };
  }

  /** A read-only view of the snapshot at `ts` (for tools and checkers). */
  snapshotAt(ts: bigint): Transaction {
    return new Transaction(this.txnDeps(), ts);
  }

  // ---- watch ---------------------------------------------------------------------------------

  /**
   * The committed transactional changes under `prefix`, or of [start, end) (empty end: no bound),
   * as an async iterator in (commit_ts, key) order, each exactly once, with `resolved` events.
   * See src/client/watch.ts (positions, resuming, bounds) and the README.
   */
  watch(range: Bytes | { start: Bytes; end: Bytes }, opts: WatchOptions = {}): Watch {
    return new Watch(this.watchDeps("watch"), watchRange(range), opts);
  }

  /** The raw keys' changes (CF default), per region in raft-log order, once each: src/client/raw-watch.ts, the README. */
  watchRaw(range: Bytes | { start: Bytes; end: Bytes }, opts: RawWatchOptions = {}): RawWatch {
    return new RawWatch(this.watchDeps("watchRaw"), watchRange(range), opts);
  }

  private watchDeps(op: string): WatchDeps {
    if (this.closed) throw new Error(`${op}: client is closed`);
    return {
      cache: this.cache,
      policy: this.policy,
      runtime: this.txnTime.runtime,
      log: this.log,
      tso: () => this.tso(),
      changeData: (addr: string) => this.changeData.get(addr),
      resolveLocks: (start: Buffer, end: Buffer) => readAllAt(this.snapshotAt.bind(this), this.tso(), start, end),
      opened: (w) => this.watches.add(w),
      ended: (w) => this.watches.delete(w),
    };
  }

  // ---- cluster information (for tinykv-ctl) --------------------------------------------------

  get clusterId(): bigint {
    return this.scheduler.clusterId;
  }

  getAllStores(excludeTombstones = false): Promise<Store[]> {
    return this.scheduler.getAllStores(excludeTombstones);
  }

  /** Every region the scheduler knows, in key order, with its leader (when reported). */
  async getAllRegions(): Promise<{ region: Region; leader?: { id: bigint; storeId: bigint } }[]> {
    return this.scheduler.scanRegions(Buffer.alloc(0), Buffer.alloc(0), 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.stop();
    this.changeData.close();
    this.cache.close();
    this.scheduler.close();
  }
}
