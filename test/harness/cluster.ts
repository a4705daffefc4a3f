import { join } from "node:path";
import type { PowerLossReport } from "../../src/kv/engine/index.js";
import { Engine, SimDisk } from "../../src/kv/engine/index.js";
import type { CfName } from "../../src/kv/engine/index.js";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { RaftstoreConfig, StoreHooks, RaftstoreObserver } from "../../src/kv/raftstore/index.js";
import {
  Store,
  TEST_RAFTSTORE_CONFIG,
  writeInitialRegion,
  writeStoreIdent,
  ensureKeyLayout,
} from "../../src/kv/raftstore/index.js";
import { RaftStorage, rawCf, rawKeyspace, RegionError } from "../../src/kv/storage/index.js";
import type { MessageCopy } from "../../src/kv/transport/index.js";
import { MemoryNetwork } from "../../src/kv/transport/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import type { Region } from "../../src/proto/metapb.js";
import { keyInRange } from "../../src/util/bytes.js";
import type { Logger } from "../../src/util/logger.js";
import { silentLogger, createLogger } from "../../src/util/logger.js";
import type { Runtime } from "../../src/util/runtime.js";
import { realRuntime, sleep } from "../../src/util/runtime.js";
import { raftOf } from "../../src/raft/testing.js";
import { seededRng } from "./rng.js";
import { tempDir } from "./wait.js";

export interface ClusterOptions {
  stores: number;
  config?: Partial<RaftstoreConfig>;
  seed?: number;
  /** Region 1 starts on stores 1..regionStores (default: every store); the others start empty. */
  regionStores?: number;
  hooks?: (storeId: bigint) => StoreHooks;
  /** Called after each (re)start of a store, e.g. to start its scheduler worker. */
  onStoreStarted?: (storeId: bigint, store: Store) => void;
  /** Told when a store stopped itself after a disk error. */
  onStoreFatal?: (storeId: bigint, err: unknown) => void;
  /** Told each store's write and turn stages (metrics tests). */
  observer?: (storeId: bigint) => RaftstoreObserver;
  /** Where the stores' engines live: real LevelDB in temp dirs (default) or a simulated disk per store. */
  disk?: "leveldb" | "sim";
  /** Clock, timers and randomness for the stores, the network and the simulated disks (default: the real ones). */
  runtime?: Runtime;
  /** A store's own view of the runtime (e.g. its skewed clock in the simulator); default `runtime`. */
  storeRuntime?: (storeId: bigint) => Runtime;
  /** How the network copies a message for its receiver (default "wire": see MemoryNetworkOptions). */
  messageCopy?: MessageCopy;
}

interface StoreSlot {
  dir: string;
  /** The store's simulated disk when the cluster runs on one; it outlives the store's restarts. */
  simDisk?: SimDisk;
  kv?: Engine;
  raft?: Engine;
  store?: Store;
}

/**
 * N stores in one process with real LevelDB in temp dirs and an in-memory network with
 * filters; stores crash/restart from their on-disk state. Region 1 starts on every store,
 * peer id = store id, as TinyKV's test cluster.
 */
export class TestCluster {
  readonly network: MemoryNetwork;
  readonly config: RaftstoreConfig;
  readonly slots = new Map<bigint, StoreSlot>();
  private readonly root = tempDir("tinykv-cluster-");
  readonly log: Logger = process.env.CLUSTER_LOG ? createLogger(process.env.CLUSTER_LOG) : silentLogger;

  /** Which peer to try when no leader is known: seeded, so a failing seed replays the same choices. */
  private readonly rng: () => number;

  constructor(readonly opts: ClusterOptions) {
    this.rng = seededRng(opts.seed ?? 1);
    this.network = new MemoryNetwork({ seed: opts.seed, runtime: opts.runtime, messageCopy: opts.messageCopy });
    this.config = { ...TEST_RAFTSTORE_CONFIG, ...opts.config };
    for (let i = 1; i <= opts.stores; i++) {
      const simDisk =
        opts.disk === "sim"
          ? new SimDisk({ name: `store${i}`, delay: (ms) => sleep(opts.runtime ?? realRuntime, ms) })
          : undefined;
      this.slots.set(BigInt(i), { dir: join(this.root.path, `store${i}`), simDisk });
    }
  }

  private openEngine(slot: StoreSlot, name: "kv" | "raft"): Promise<Engine> {
    return slot.simDisk ? slot.simDisk.open(name) : Engine.open(join(slot.dir, name));
  }

  get storeIds(): bigint[] {
    return [...this.slots.keys()];
  }

  async start(): Promise<void> {
    const region: Region = {
      id: 1n,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { confVer: 1n, version: 1n },
      peers: this.storeIds
        .filter((id) => id <= BigInt(this.opts.regionStores ?? this.opts.stores))
        .map((id) => ({ id, storeId: id })),
    };
    for (const [id, slot] of this.slots) {
      const kv = await this.openEngine(slot, "kv");
      const raft = await this.openEngine(slot, "raft");
      await ensureKeyLayout(kv);
      await writeStoreIdent(kv, 0n, id);
      if (region.peers.some((p) => p.storeId === id)) await writeInitialRegion(kv, raft, region);
      await kv.close();
      await raft.close();
    }
    for (const id of this.storeIds) await this.startStore(id);
  }

  async startStore(id: bigint): Promise<void> {
    const slot = this.slots.get(id)!;
    if (slot.store) return;
    slot.kv = await this.openEngine(slot, "kv");
    slot.raft = await this.openEngine(slot, "raft");
    const store = new Store({
      storeId: id,
      kv: slot.kv,
      raft: slot.raft,
      snapDir: slot.simDisk ? "snap" : join(slot.dir, "snap"),
      snapFiles: slot.simDisk?.files.mount(),
      config: this.config,
      log: this.log,
      makeTransport: (source, events) => this.network.transport(id, source, events),
      hooks: this.opts.hooks?.(id) ?? this.mockSchedulerHooks(id),
      runtime: this.opts.storeRuntime?.(id) ?? this.opts.runtime,
      observer: this.opts.observer?.(id),
      onFatal: (err) => this.opts.onStoreFatal?.(id, err),
    });
    slot.store = store;
    this.network.register(id, store);
    await store.start();
    this.opts.onStoreStarted?.(id, store);
  }

  private nextId = 1000n;

  /** Ids for new peers and regions, as the mock scheduler's AllocID. */
  allocId(): bigint {
    return this.nextId++;
  }

  /** Split approval without a scheduler: ids from the harness, the split proposed at once. */
  private mockSchedulerHooks(storeId: bigint): StoreHooks {
    return {
      onSplitKey: (peer, splitKey) => {
        const store = this.store(storeId);
        if (!store) return;
        const region = peer.region;
        void store.proposeSplit(
          region.id,
          region.regionEpoch!,
          splitKey,
          this.allocId(),
          region.peers.map(() => this.allocId()),
        );
      },
    };
  }

  /** Stops a store as a crash would look to the others: gone from the network, state on disk. */
  async stopStore(id: bigint): Promise<void> {
    const slot = this.slots.get(id)!;
    if (!slot.store) return;
    this.network.unregister(id);
    await slot.store.stop();
    await slot.kv!.close();
    await slot.raft!.close();
    slot.store = slot.kv = slot.raft = undefined;
  }

  /**
   * The power goes on a store of a sim-disk cluster: gone from the network, its engines crash
   * and keep a seeded prefix of their unsynced writes. startStore() restarts it from what survived.
   */
  async powerLoss(id: bigint, rng: () => number): Promise<PowerLossReport[]> {
    const slot = this.slots.get(id)!;
    if (!slot.simDisk) throw new Error('powerLoss needs a cluster on the simulated disk (disk: "sim")');
    this.network.unregister(id);
    const report = await slot.simDisk.powerLoss(rng);
    await slot.store?.stop();
    slot.store = slot.kv = slot.raft = undefined;
    return report;
  }

  simDisk(id: bigint): SimDisk | undefined {
    return this.slots.get(id)?.simDisk;
  }

  /** The running store `id`; one that stopped itself (a disk error) is gone, as its process would be. */
  store(id: bigint): Store | undefined {
    const store = this.slots.get(id)?.store;
    return store?.stopped ? undefined : store;
  }

  engine(id: bigint): Engine | undefined {
    return this.slots.get(id)?.kv;
  }

  async shutdown(): Promise<void> {
    for (const id of this.storeIds) await this.stopStore(id);
    this.network.close();
    this.root.cleanup();
  }

  /** The newest region containing `key` as the running stores know it (the harness's "scheduler"). */
  regionFor(key: Buffer): Region | undefined {
    let best: Region | undefined;
    for (const id of this.slots.keys()) {
      for (const r of this.store(id)?.regions() ?? []) {
        if (!keyInRange(key, r.startKey, r.endKey)) continue;
        if (
          !best ||
          r.regionEpoch!.version > best.regionEpoch!.version ||
          (r.regionEpoch!.version === best.regionEpoch!.version && r.regionEpoch!.confVer > best.regionEpoch!.confVer)
        )
          best = r;
      }
    }
    return best;
  }

  /** The store whose peer of `regionId` is leader, if any. */
  leaderOf(regionId: bigint): bigint | undefined {
    for (const id of this.slots.keys()) if (this.store(id)?.peers.get(regionId)?.isLeader()) return id;
    return undefined;
  }

  /**
   * Runs `op` against the region's leader (the storage as the txn handlers see it; put, get,
   * delete and scan below use the raw API's view of it), retrying on region errors (not leader, epoch, stale,
   * timeout) with backoff until the deadline — what a client library does.
   */
  async onLeader<T>(
    key: Buffer,
    what: string,
    op: (storage: RaftStorage, ctx: Context) => Promise<T>,
    timeoutMs = 15_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let backoff = 10;
    let last: unknown;
    let hint: bigint | undefined;
    for (;;) {
      const region = this.regionFor(key);
      if (region) {
        const storeId =
          hint ?? this.leaderOf(region.id) ?? region.peers[Math.floor(this.rng() * region.peers.length)]!.storeId;
        hint = undefined;
        const store = this.store(storeId);
        if (store) {
          const ctx: Context = {
            regionId: region.id,
            regionEpoch: region.regionEpoch,
            peer: store.peerMeta(region.id),
            term: 0n,
          };
          try {
            return await op(new RaftStorage(store), ctx);
          } catch (err) {
            if (!(err instanceof RegionError)) throw err;
            last = err;
            const leader = err.pb.notLeader?.leader;
            if (leader && leader.storeId !== 0n) hint = leader.storeId;
          }
        }
      }
      if (Date.now() > deadline)
        throw new Error(
          `${what}: timed out after ${timeoutMs} ms (last error: ${last instanceof Error ? last.message : String(last)})`,
        );
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 100);
    }
  }

  put(key: string | Buffer, value: string | Buffer, cf: CfName = CF_DEFAULT): Promise<void> {
    const k = Buffer.from(key);
    return this.onLeader(k, `put ${k}`, (s, ctx) =>
      rawKeyspace(s).write(ctx, [{ kind: "put", cf, key: k, value: Buffer.from(value) }]),
    );
  }

  delete(key: string | Buffer, cf: CfName = CF_DEFAULT): Promise<void> {
    const k = Buffer.from(key);
    return this.onLeader(k, `delete ${k}`, (s, ctx) => rawKeyspace(s).write(ctx, [{ kind: "delete", cf, key: k }]));
  }

  get(key: string | Buffer, cf: CfName = CF_DEFAULT): Promise<Buffer | undefined> {
    const k = Buffer.from(key);
    return this.onLeader(k, `get ${k}`, async (s, ctx) => {
      const reader = await rawKeyspace(s).reader(ctx);
      try {
        return await reader.getCF(cf, k);
      } finally {
        await reader.close();
      }
    });
  }

  /** Scans [start, end) across regions, region by region, like TinyKV's harness Scan. */
  async scan(
    start: string | Buffer,
    end: string | Buffer,
    cf: CfName = CF_DEFAULT,
  ): Promise<Array<{ key: Buffer; value: Buffer }>> {
    const out: Array<{ key: Buffer; value: Buffer }> = [];
    let cur: Buffer = Buffer.from(start);
    const stop = Buffer.from(end);
    for (;;) {
      let regionEnd: Buffer = Buffer.alloc(0);
      const part = await this.onLeader(cur, `scan from ${cur}`, async (s, ctx) => {
        const reader = await s.reader(ctx);
        const rows: Array<{ key: Buffer; value: Buffer }> = [];
        const cursor = reader.iterCF(rawCf(cf));
        try {
          await cursor.seek(cur);
          while (cursor.valid && (stop.length === 0 || Buffer.compare(cursor.key, stop) < 0)) {
            rows.push({ key: cursor.key, value: cursor.value });
            await cursor.next();
          }
          const readRegion = (reader as unknown as { region: Region }).region;
          regionEnd = readRegion.endKey;
          if (rows.length > 0 && Buffer.compare(rows[0]!.key, cur) < 0) {
            throw new Error(
              `scan bug: seek(${cur}) in region ${readRegion.id} [${readRegion.startKey}, ${readRegion.endKey}) returned ${rows[0]!.key} first (ctx region ${ctx.regionId})`,
            );
          }
          return rows;
        } finally {
          await cursor.close();
          await reader.close();
        }
      });
      out.push(...part);
      if (regionEnd.length === 0 || (stop.length > 0 && Buffer.compare(regionEnd, stop) >= 0)) return out;
      cur = regionEnd;
    }
  }

  /** One line per peer: what each store believes about each region, for failure messages. */
  dump(): string {
    const lines: string[] = [];
    for (const [id, slot] of this.slots) {
      if (!slot.store) {
        lines.push(`store ${id}: down`);
        continue;
      }
      for (const p of slot.store.peers.values()) {
        const r = raftOf(p.raw);
        const ep = p.region.regionEpoch;
        lines.push(
          `store ${id} region ${p.regionId} peer ${p.meta.id}: state=${r.state} term=${r.term} lead=${r.lead} ` +
            `peers=[${p.region.peers.map((x) => `${x.id}@${x.storeId}`).join(",")}] epoch=${ep?.confVer}/${ep?.version} ` +
            `applied=${p.storage.appliedIndex} last=${p.storage.lastIndex()}@${r.raftLog.lastTerm()} truncated=${p.storage.truncatedIndex} commit=${r.raftLog.committed} ` +
            `rawApplied=${r.raftLog.applied} vote=${r.vote} nodes=[${[...r.prs.keys()].join(",")}] votes=${JSON.stringify([...(r.votes ?? new Map()).entries()].map(([k, v]) => `${k}:${v}`))}`,
        );
      }
      for (const [rid, r] of slot.store.tombstones)
        lines.push(`store ${id} region ${rid}: tombstone epoch=${r.regionEpoch?.confVer}/${r.regionEpoch?.version}`);
    }
    return lines.join("\n");
  }

  /** Reads a raw key straight from a store's kv engine (no raft), as TinyKV's MustGetEqual does. */
  async engineGet(storeId: bigint, key: string, cf: CfName = CF_DEFAULT): Promise<Buffer | undefined> {
    return this.engine(storeId)?.get(rawCf(cf), Buffer.from(key));
  }
}
