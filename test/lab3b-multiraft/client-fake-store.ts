/**
 * Fixtures for the client tests: a real tinyscheduler plus FAKE stores. A fake store is an
 * in-process TinyKv gRPC service over a StandaloneStorage (the real raw and txn handlers) behind a
 * routing guard that answers region errors the way the raftstore does: RegionNotFound,
 * StoreNotMatch, NotLeader (with the leader it believes in as hint), EpochNotMatch (with its
 * current regions), KeyNotInRegion. Tests script a store's view of its regions with host().
 */
import type * as grpc from "@grpc/grpc-js";
import { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import * as kv from "../../src/proto/kvrpcpb.js";
import { Peer, Region, StoreState } from "../../src/proto/metapb.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { SchedulerServer } from "../../src/scheduler/server/server.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type { Storage } from "../../src/kv/storage/index.js";
import { StandaloneStorage } from "../../src/kv/storage/index.js";
import { keyInRange } from "../../src/util/bytes.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";
import { startScheduler } from "../lab3c-scheduler/helpers.js";

type Ctx = kv.Context | undefined;
interface Guarded {
  keys: (req: any) => Buffer[];
  reply: (regionError: RegionErrorPb) => unknown;
}

/** Which keys each rpc touches (routing is by raw user key), and how it answers a region error. */
const GUARDS: Record<string, Guarded> = {
  rawGet: { keys: (r: kv.RawGetRequest) => [r.key], reply: (e) => kv.RawGetResponse.create({ regionError: e }) },
  rawPut: { keys: (r: kv.RawPutRequest) => [r.key], reply: (e) => kv.RawPutResponse.create({ regionError: e }) },
  rawDelete: {
    keys: (r: kv.RawDeleteRequest) => [r.key],
    reply: (e) => kv.RawDeleteResponse.create({ regionError: e }),
  },
  rawScan: {
    keys: (r: kv.RawScanRequest) => [r.startKey],
    reply: (e) => kv.RawScanResponse.create({ regionError: e }),
  },
  kvGet: { keys: (r: kv.GetRequest) => [r.key], reply: (e) => kv.GetResponse.create({ regionError: e }) },
  kvScan: { keys: (r: kv.ScanRequest) => [r.startKey], reply: (e) => kv.ScanResponse.create({ regionError: e }) },
  kvPrewrite: {
    keys: (r: kv.PrewriteRequest) => r.mutations.map((m) => m.key),
    reply: (e) => kv.PrewriteResponse.create({ regionError: e }),
  },
  kvCommit: { keys: (r: kv.CommitRequest) => r.keys, reply: (e) => kv.CommitResponse.create({ regionError: e }) },
  kvBatchRollback: {
    keys: (r: kv.BatchRollbackRequest) => r.keys,
    reply: (e) => kv.BatchRollbackResponse.create({ regionError: e }),
  },
  kvCheckTxnStatus: {
    keys: (r: kv.CheckTxnStatusRequest) => [r.primaryKey],
    reply: (e) => kv.CheckTxnStatusResponse.create({ regionError: e }),
  },
  kvResolveLock: { keys: () => [], reply: (e) => kv.ResolveLockResponse.create({ regionError: e }) },
  kvTxnHeartBeat: {
    keys: (r: kv.TxnHeartBeatRequest) => [r.primaryLock],
    reply: (e) => kv.TxnHeartBeatResponse.create({ regionError: e }),
  },
};

/** The request message of each guarded rpc, to measure what went over the wire. */
const REQUEST_TYPES: Record<string, string> = {
  rawGet: "RawGetRequest",
  rawPut: "RawPutRequest",
  rawDelete: "RawDeleteRequest",
  rawScan: "RawScanRequest",
  kvGet: "GetRequest",
  kvScan: "ScanRequest",
  kvPrewrite: "PrewriteRequest",
  kvCommit: "CommitRequest",
  kvBatchRollback: "BatchRollbackRequest",
  kvCheckTxnStatus: "CheckTxnStatusRequest",
  kvResolveLock: "ResolveLockRequest",
  kvTxnHeartBeat: "TxnHeartBeatRequest",
};

export interface Served {
  rpc: string;
  regionId: bigint;
  keys: string[];
  /** Undefined when served; the region error's kind otherwise. */
  regionError?: string;
  seq: number;
  /** The request's encoded size. */
  bytes: number;
}

let seq = 0;

export class FakeStore {
  /** region id → (region as this store knows it, the peer it believes leads). */
  readonly regions = new Map<bigint, { region: Region; leader: Peer | undefined }>();
  /** Every request that reached the store, in arrival order (seq is global across stores). */
  readonly served: Served[] = [];
  /** rpc → a gate each request of that rpc awaits before it is served (see hold()). */
  private readonly gates = new Map<string, (req: unknown) => Promise<void>>();

  private constructor(
    readonly storeId: bigint,
    readonly storage: StandaloneStorage,
    private readonly server: grpc.Server,
    readonly addr: string,
    private readonly cleanup: () => void,
    /** Bytes (keys + values) of every write batch the txn handlers made: what a raft entry would carry. */
    readonly txnWriteBytes: number[],
  ) {}

  static async start(storeId: bigint): Promise<FakeStore> {
    const dir = tempDir(`tinykv-client-store${storeId}-`);
    const storage = new StandaloneStorage(dir.path);
    await storage.start();
    const writeBytes: number[] = [];
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(recordingWrites(storage, writeBytes)),
      log: silentLogger,
    });
    let store: FakeStore | undefined;
    const handlers = svc as unknown as Record<string, grpc.handleUnaryCall<unknown, unknown>>;
    for (const [rpc, g] of Object.entries(GUARDS)) {
      const inner = handlers[rpc]!;
      handlers[rpc] = (call, callback) => {
        const req = call.request as { context?: kv.Context };
        const keys = g.keys(req);
        const bytes = (kv as any)[REQUEST_TYPES[rpc]!].encode(call.request).finish().length as number;
        const err = store!.check(req.context, keys);
        store!.served.push({
          rpc,
          regionId: req.context?.regionId ?? 0n,
          keys: keys.map((k) => k.toString()),
          regionError: err
            ? (Object.keys(err).find((k) => k !== "message" && (err as any)[k] !== undefined) ?? "message")
            : undefined,
          seq: seq++,
          bytes,
        });
        const gate = store!.gates.get(rpc);
        const serve = () => (err ? callback(null, g.reply(err)) : inner(call, callback));
        if (gate)
          gate(call.request).then(serve, (e: unknown) =>
            callback({ code: 13, details: String(e) } as grpc.ServiceError, null),
          );
        else serve();
      };
    }
    const { server, port } = await listenTinyKv(svc, "127.0.0.1:0");
    store = new FakeStore(storeId, storage, server, `127.0.0.1:${port}`, dir.cleanup, writeBytes);
    return store;
  }

  /** Makes every `rpc` request wait for `gate(request)` before it is served (a slow or stalled store). */
  hold(rpc: string, gate: (req: any) => Promise<void>): void {
    this.gates.set(rpc, gate);
  }

  /** Sets this store's view of a region and who leads it (undefined = no leader known). */
  host(region: Region, leader: Peer | undefined): void {
    this.regions.set(region.id, { region, leader });
  }

  /** The routing checks of the raftstore, in its order. */
  check(ctx: Ctx, keys: Buffer[]): RegionErrorPb | undefined {
    if (!ctx) return RegionErrorPb.create({ message: "missing context" });
    const hosted = this.regions.get(ctx.regionId);
    if (!hosted)
      return RegionErrorPb.create({ message: "region not found", regionNotFound: { regionId: ctx.regionId } });
    if (ctx.peer?.storeId !== this.storeId) {
      return RegionErrorPb.create({
        message: "store not match",
        storeNotMatch: { requestStoreId: ctx.peer?.storeId ?? 0n, actualStoreId: this.storeId },
      });
    }
    if (hosted.leader?.storeId !== this.storeId) {
      return RegionErrorPb.create({
        message: "not leader",
        notLeader: { regionId: ctx.regionId, leader: hosted.leader },
      });
    }
    const e = hosted.region.regionEpoch!;
    if (ctx.regionEpoch?.version !== e.version || ctx.regionEpoch?.confVer !== e.confVer) {
      return RegionErrorPb.create({
        message: "epoch not match",
        epochNotMatch: { currentRegions: [...this.regions.values()].map((h) => h.region) },
      });
    }
    const r = hosted.region;
    const outside = keys.find((k) => !keyInRange(k, r.startKey, r.endKey));
    if (outside) {
      return RegionErrorPb.create({
        message: "key not in region",
        keyNotInRegion: { key: outside, regionId: r.id, startKey: r.startKey, endKey: r.endKey },
      });
    }
    return undefined;
  }

  servedOk(rpc?: string): Served[] {
    return this.served.filter((s) => !s.regionError && (!rpc || s.rpc === rpc));
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
    await this.storage.stop();
    this.cleanup();
  }
}

/** The storage as the txn handlers see it, recording the size of each write batch. */
function recordingWrites(inner: StandaloneStorage, sizes: number[]): Storage {
  return {
    start: () => inner.start(),
    stop: () => inner.stop(),
    reader: (ctx) => inner.reader(ctx),
    write: (ctx, batch) => {
      sizes.push(
        batch.reduce(
          (n, m) =>
            n +
            (m.kind === "deleteRange" ? m.start.length + m.end.length : m.key.length) +
            (m.kind === "put" ? m.value.length : 0),
          0,
        ),
      );
      return inner.write(ctx, batch);
    },
  };
}

export function region(id: bigint, start: string, end: string, peers: Peer[], version = 1n, confVer = 1n): Region {
  return Region.create({
    id,
    startKey: Buffer.from(start),
    endKey: Buffer.from(end),
    regionEpoch: { version, confVer },
    peers,
  });
}

/** A tinyscheduler with N registered fake stores (ids 1..N); regions are announced by heartbeat(). */
export class FakeCluster {
  private constructor(
    readonly scheduler: SchedulerServer,
    readonly pd: SchedulerRpcClient,
    readonly stores: FakeStore[],
    private readonly cleanupDir: () => void,
  ) {}

  static async start(nStores: number): Promise<FakeCluster> {
    const dir = tempDir("tinykv-client-sched-");
    const scheduler = await startScheduler(dir.path);
    const pd = await SchedulerRpcClient.connect(scheduler.addr, { timeoutMs: 1000 });
    const stores: FakeStore[] = [];
    for (let i = 1; i <= nStores; i++) stores.push(await FakeStore.start(BigInt(i)));
    await pd.bootstrap({ id: 1n, address: stores[0]!.addr, state: StoreState.Up });
    for (const s of stores.slice(1)) await pd.putStore({ id: s.storeId, address: s.addr, state: StoreState.Up });
    return new FakeCluster(scheduler, pd, stores, dir.cleanup);
  }

  store(id: bigint): FakeStore {
    return this.stores.find((s) => s.storeId === id)!;
  }

  /** Tells the scheduler about a region (as its leader would) and waits until it routes by it. */
  async heartbeat(r: Region, leader: Peer): Promise<void> {
    this.pd.regionHeartbeat({ region: r, leader, pendingPeers: [], approximateSize: 0n });
    await waitFor(
      async () => {
        const got = await this.pd.getRegionById(r.id);
        return (
          got &&
          got.region.regionEpoch?.version === r.regionEpoch?.version &&
          got.region.startKey.equals(r.startKey) &&
          got.region.endKey.equals(r.endKey)
        );
      },
      { timeoutMs: 5000, message: `scheduler to learn region ${r.id} from its heartbeat` },
    );
  }

  /** Hosts the region on every store of its peers (with `leader` as their leader) and tells the scheduler. */
  async addRegion(r: Region, leader: Peer): Promise<void> {
    for (const p of r.peers) this.store(p.storeId).host(r, leader);
    await this.heartbeat(r, leader);
  }

  async stop(): Promise<void> {
    this.pd.close();
    for (const s of this.stores) await s.stop();
    await this.scheduler.stop();
    this.cleanupDir();
  }
}

export const peer = (id: bigint, storeId: bigint): Peer => Peer.create({ id, storeId });
