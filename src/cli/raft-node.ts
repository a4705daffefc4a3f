import { join } from "node:path";
import { Engine } from "../kv/engine/index.js";
import type { RaftstoreConfig } from "../kv/raftstore/index.js";
import {
  clearPrepareBootstrap,
  clearPreparedRegion,
  ensureKeyLayout,
  readPrepareBootstrap,
  readStoreIdent,
  ResolvedTsWorker,
  SchedulerWorker,
  Store,
  writeInitialRegion,
  writeStoreIdent,
} from "../kv/raftstore/index.js";
import {
  BatchCommandsStreams,
  createTinyKvService,
  listenTinyKv,
  RawHandlers,
  shutdownGracefully,
  TxnHandlers,
} from "../kv/server/index.js";
import { ledRegions, TtlSweeper } from "../kv/server/raw-ttl.js";
import { RaftStorage } from "../kv/storage/index.js";
import type { FeedOptions } from "../kv/watch/index.js";
import { ChangeDataFeeds, ChangeHub, feedStoreOf } from "../kv/watch/index.js";
import { ChangeDataService } from "../proto/cdcpb.js";
import type { StoreResolver } from "../kv/transport/index.js";
import { GrpcTransport } from "../kv/transport/index.js";
import type { Region } from "../proto/metapb.js";
import { ErrorType } from "../proto/schedulerpb.js";
import type { SchedulerApi } from "../scheduler/api.js";
import { SchedulerError, SchedulerRpcClient } from "../scheduler/client/client.js";
import {
  instrumentTinyKv,
  RaftstoreMetrics,
  raftstoreGauges,
  raftstoreStatus,
  startStoreStatusServer,
  StoreMetrics,
  watchReplicaReads,
} from "../kv/status/index.js";
import { Lock } from "../txn/index.js";

/** TiKV logs a slow request past 1 s; we say 500 ms (the default). */
export const DEFAULT_SLOW_MS = 500;
import { statusAddrToRegister } from "../util/http-status.js";
import type { Logger } from "../util/logger.js";
import { retryWithBackoff } from "../util/retry.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import type { TlsConfig } from "../util/tls.js";
import type { RunningNode } from "./standalone-node.js";

export class ClusterMismatchError extends Error {
  constructor(path: string, onDisk: bigint, scheduler: bigint) {
    super(`data dir ${path} belongs to cluster ${onDisk}, but the scheduler runs cluster ${scheduler}`);
    this.name = "ClusterMismatchError";
  }
}

/** Store addresses from the scheduler's GetStore, cached for a minute. */
class SchedulerResolver implements StoreResolver {
  private readonly cache = new Map<bigint, { addr: string; at: number }>();
  constructor(
    private readonly client: SchedulerApi,
    private readonly runtime: Runtime,
  ) {}
  async resolve(storeId: bigint): Promise<string> {
    const hit = this.cache.get(storeId);
    if (hit && this.runtime.now() - hit.at < 60_000) return hit.addr;
    const { store } = await this.client.getStore(storeId);
    this.cache.set(storeId, { addr: store.address, at: this.runtime.now() });
    return store.address;
  }
}

export interface RaftNodeOptions {
  path: string;
  addr: string;
  scheduler: string[];
  config: RaftstoreConfig;
  log: Logger;
  /** The store stopped itself after a disk error: the process should exit (tinykv-server does). */
  onFatal?: (err: unknown) => void;
  /** A write slower than this logs its stages (ms; 0 never). Default 500. */
  slowMs?: number;
  /** Where to serve /metrics and /status (host:port); undefined: no status server. */
  statusAddr?: string;
  /** The address registered with the scheduler (PutStore) for others to dial; default `addr`. */
  advertiseAddr?: string;
  /** The status address this store reports in /status; default the bound status address. */
  advertiseStatusAddr?: string;
  /** How long to keep trying to reach the scheduler before giving up. */
  schedulerDeadlineMs?: number;
  /** Mutual TLS on every connection: clients, other stores, the scheduler, the status server. */
  tls?: TlsConfig;
  /** The change feed's resolved-ts period and per-watcher buffer bound (defaults: DEFAULT_FEED_OPTIONS). */
  watch?: Partial<FeedOptions>;
}

/**
 * A store in a cluster, as TinyKV's node starts one: get a store id from the scheduler (first
 * start), bootstrap the cluster's first region if nobody has, register the store, then serve.
 */
export async function startRaftNode(opts: RaftNodeOptions): Promise<RunningNode & { storeId: bigint }> {
  const { log } = opts;
  // A real process: the real clock, timers and randomness for every layer it wires.
  const runtime = realRuntime;
  const client = await SchedulerRpcClient.connect(opts.scheduler, {
    connectDeadlineMs: opts.schedulerDeadlineMs ?? 30_000,
    log,
    tls: opts.tls,
  });
  let kv: Engine | undefined;
  let raft: Engine | undefined;
  try {
    kv = await Engine.open(join(opts.path, "kv"));
    raft = await Engine.open(join(opts.path, "raft"));
    await ensureKeyLayout(kv);
    const storeId = await ensureStoreIdent(kv, client, opts.path);
    await maybeBootstrapCluster(kv, raft, client, storeId, log);
    const advertiseAddr = opts.advertiseAddr ?? opts.addr;
    // The scheduler keeps the status address for its dashboard and tinykv-ctl (TiKV's
    // status_address). An ephemeral port (0) is only known once bound: registered again below.
    const statusToRegister = statusAddrToRegister(opts.advertiseStatusAddr ?? opts.statusAddr, advertiseAddr);
    const ephemeralStatus = statusToRegister?.endsWith(":0") ?? false;
    await client.putStore({
      id: storeId,
      address: advertiseAddr,
      statusAddress: ephemeralStatus ? "" : (statusToRegister ?? ""),
    });

    const metrics = new StoreMetrics({ storeId });
    const worker = new SchedulerWorker(client, opts.path, log, runtime);
    const resolver = new SchedulerResolver(client, runtime);
    const changes = new ChangeHub(log);
    const store = new Store({
      storeId,
      kv,
      raft,
      snapDir: join(opts.path, "snap"),
      config: opts.config,
      log,
      runtime,
      makeTransport: (snapshotSource, events) =>
        new GrpcTransport({
          storeId,
          resolver,
          snapshotSource,
          events,
          log,
          runtime,
          tls: opts.tls,
          raftOverTcp: opts.config.raftOverTcp,
        }),
      hooks: worker.hooks(),
      observer: changes.observer(new RaftstoreMetrics(metrics.registry, log, opts.slowMs ?? DEFAULT_SLOW_MS)),
      onFatal: opts.onFatal,
    });
    changes.attach({ regionOf: (id) => store.peers.get(id)?.region });
    metrics.watchStore(raftstoreGauges(store));
    watchReplicaReads(metrics.registry, store.replicaReads);
    await store.start();
    worker.start(store, opts.config.schedulerStoreHeartbeatTickMs);
    const resolvedTs = new ResolvedTsWorker(
      store,
      { tso: () => client.tso(), lockStartTs: (record) => Lock.parse(record).ts },
      opts.config.resolvedTsIntervalMs,
      log,
      runtime,
    );
    resolvedTs.start();
    const storage = new RaftStorage(store);
    const batchStreams = new BatchCommandsStreams(log, runtime);
    const raw = new RawHandlers(storage, runtime);
    const ttlSweeper = new TtlSweeper({
      keyspace: raw.keyspace,
      targets: ledRegions(store),
      runtime,
      intervalMs: opts.config.rawTtlCheckTickMs,
      batch: opts.config.rawTtlCheckBatch,
      log,
    });
    const service = instrumentTinyKv(
      createTinyKvService({
        raw,
        txn: new TxnHandlers(storage),
        raft: store,
        batchStreams,
        log,
      }),
      metrics,
    );
    const feeds = new ChangeDataFeeds({
      store: feedStoreOf(store),
      hub: changes,
      tso: () => client.tso(),
      runtime,
      log,
      options: opts.watch,
    });
    const { server, port, closePort } = await listenTinyKv(service, listenAddr(opts.addr), {
      tls: opts.tls,
      log,
      raftSink: store,
      runtime,
      services: [{ definition: ChangeDataService, implementation: feeds.service() }],
    }).catch(async (err: unknown) => {
      // The port is taken (or the address bad): what already runs stops before the engines close.
      worker.stop();
      resolvedTs.stop();
      await store.stop();
      throw err;
    });
    ttlSweeper.start();
    const status = opts.statusAddr
      ? await startStoreStatusServer(
          opts.statusAddr,
          metrics,
          () => ({
            ...raftstoreStatus(store, advertiseAddr),
            status_addr: opts.advertiseStatusAddr ?? opts.statusAddr,
          }),
          { tls: opts.tls, log },
        ).catch(async (err: unknown) => {
          await shutdownGracefully(server, runtime);
          await closePort();
          await ttlSweeper.stop();
          worker.stop();
          resolvedTs.stop();
          await store.stop();
          throw err;
        })
      : undefined;
    if (status && ephemeralStatus) {
      await client.putStore({
        id: storeId,
        address: advertiseAddr,
        statusAddress: statusAddrToRegister(status.addr, advertiseAddr) ?? "",
      });
    }
    const kvEngine = kv;
    const raftEngine = raft;
    return {
      port,
      storeId,
      statusAddr: status?.addr,
      async stop() {
        await status?.close();
        batchStreams.closeAll();
        feeds.closeAll();
        await shutdownGracefully(server, runtime);
        await closePort();
        await ttlSweeper.stop();
        worker.stop();
        resolvedTs.stop();
        await store.stop();
        client.close();
        await kvEngine.close();
        await raftEngine.close();
      },
    };
  } catch (err) {
    client.close();
    await kv?.close();
    await raft?.close();
    throw err;
  }
}

/** Listen on --addr as given (0.0.0.0 included); what others dial is the advertise address. */
function listenAddr(addr: string): string {
  return addr;
}

async function ensureStoreIdent(kv: Engine, client: SchedulerApi, path: string): Promise<bigint> {
  const ident = await readStoreIdent(kv);
  if (ident) {
    if (ident.clusterId !== client.clusterId) throw new ClusterMismatchError(path, ident.clusterId, client.clusterId);
    return ident.storeId;
  }
  const storeId = await client.allocId();
  await writeStoreIdent(kv, client.clusterId, storeId);
  return storeId;
}

async function maybeBootstrapCluster(
  kv: Engine,
  raft: Engine,
  client: SchedulerApi,
  storeId: bigint,
  log: Logger,
): Promise<void> {
  let region: Region | undefined = await readPrepareBootstrap(kv);
  if (!region) {
    if (await client.isBootstrapped()) return;
    const regionId = await client.allocId();
    const peerId = await client.allocId();
    region = {
      id: regionId,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: [{ id: peerId, storeId }],
    };
    await writeInitialRegion(kv, raft, region, true);
  }
  let outcomeUnknown = false;
  try {
    await retryWithBackoff(
      async () => {
        try {
          await client.bootstrap({ id: storeId });
        } catch (err) {
          if (!(err instanceof SchedulerError)) outcomeUnknown = true;
          throw err;
        }
      },
      {
        what: "bootstrap the cluster",
        deadlineMs: 30_000,
        retryable: (err) => !(err instanceof SchedulerError && err.type === ErrorType.ALREADY_BOOTSTRAPPED),
      },
    );
    await clearPrepareBootstrap(kv);
    log.info(
      { region_id: String(region.id), store_id: String(storeId) },
      "bootstrapped the cluster with its first region",
    );
  } catch (err) {
    if (!(err instanceof SchedulerError && err.type === ErrorType.ALREADY_BOOTSTRAPPED)) throw err;
    const first = await client.getRegion(Buffer.alloc(0));
    if (first?.region.id === region.id || (!first && outcomeUnknown)) {
      await clearPrepareBootstrap(kv);
    } else {
      await clearPreparedRegion(kv, raft, region.id);
      log.info({ store_id: String(storeId) }, "another store bootstrapped the cluster first; joining it");
    }
  }
}
