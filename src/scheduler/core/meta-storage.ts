import { Cluster, Region, Store } from "../../proto/metapb.js";
import { CorruptMetadataError } from "../errors.js";
import type { MetaKV } from "./meta-kv.js";

const K = {
  clusterId: "meta/cluster_id",
  cluster: "meta/cluster",
  bootstrapTime: "meta/bootstrap_time",
  allocId: "meta/alloc_id",
  tso: "meta/tso",
  gcSafePoint: "meta/gc_safe_point",
  store: "store/",
  region: "region/",
} as const;

function idKey(prefix: string, id: bigint): string {
  return prefix + id.toString().padStart(20, "0");
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

function readU64(key: string, b: Buffer | undefined): bigint | undefined {
  if (b === undefined) return undefined;
  if (b.length !== 8) throw new CorruptMetadataError(key, `expected 8 bytes, got ${b.length}`);
  return b.readBigUInt64BE();
}

function decode<T>(key: string, b: Buffer, fn: (b: Buffer) => T): T {
  try {
    return fn(b);
  } catch (err) {
    throw new CorruptMetadataError(key, (err as Error).message);
  }
}

/**
 * The scheduler's durable metadata: cluster id and config, stores, regions, the id allocator's
 * reserved end and the TSO high-water mark. Everything that guards against reissuing ids or
 * timestamps is written with sync.
 */
export class MetaStorage {
  constructor(readonly kv: MetaKV) {}

  async loadClusterId(): Promise<bigint | undefined> {
    return readU64(K.clusterId, await this.kv.get(K.clusterId));
  }

  async saveClusterId(id: bigint): Promise<void> {
    await this.kv.write([[K.clusterId, u64(id)]], [], true);
  }

  async loadCluster(): Promise<Cluster | undefined> {
    const b = await this.kv.get(K.cluster);
    return b && decode(K.cluster, b, (x) => Cluster.decode(x));
  }

  async saveCluster(c: Cluster): Promise<void> {
    await this.kv.write([[K.cluster, Buffer.from(Cluster.encode(c).finish())]], [], true);
  }

  /** Bootstrap in one atomic write: cluster config, time and the first store. */
  async saveBootstrap(c: Cluster, store: Store, nowMs: number): Promise<void> {
    await this.kv.write(
      [
        [K.cluster, Buffer.from(Cluster.encode(c).finish())],
        [K.bootstrapTime, u64(BigInt(nowMs))],
        [idKey(K.store, store.id), Buffer.from(Store.encode(store).finish())],
      ],
      [],
      true,
    );
  }

  async saveStore(s: Store): Promise<void> {
    await this.kv.write([[idKey(K.store, s.id), Buffer.from(Store.encode(s).finish())]], [], true);
  }

  async loadStores(): Promise<Store[]> {
    return (await this.kv.scanPrefix(K.store)).map(([k, v]) => decode(k, v, (x) => Store.decode(x)));
  }

  /** Region metadata is a cache of what heartbeats report: batched and not synced. */
  async saveRegions(puts: Region[], deletes: bigint[]): Promise<void> {
    if (puts.length === 0 && deletes.length === 0) return;
    await this.kv.write(
      puts.map((r) => [idKey(K.region, r.id), Buffer.from(Region.encode(r).finish())] as const),
      deletes.map((id) => idKey(K.region, id)),
      false,
    );
  }

  async loadRegions(): Promise<Region[]> {
    return (await this.kv.scanPrefix(K.region)).map(([k, v]) => decode(k, v, (x) => Region.decode(x)));
  }

  async loadAllocEnd(): Promise<bigint> {
    return readU64(K.allocId, await this.kv.get(K.allocId)) ?? 0n;
  }

  async saveAllocEnd(end: bigint): Promise<void> {
    await this.kv.write([[K.allocId, u64(end)]], [], true);
  }

  /** Highest physical ms the TSO may have issued (an upper bound). */
  async loadTsoHighWater(): Promise<number> {
    return Number(readU64(K.tso, await this.kv.get(K.tso)) ?? 0n);
  }

  async saveTsoHighWater(ms: number): Promise<void> {
    await this.kv.write([[K.tso, u64(BigInt(ms))]], [], true);
  }

  async loadGcSafePoint(): Promise<bigint> {
    return readU64(K.gcSafePoint, await this.kv.get(K.gcSafePoint)) ?? 0n;
  }

  async saveGcSafePoint(sp: bigint): Promise<void> {
    await this.kv.write([[K.gcSafePoint, u64(sp)]], [], true);
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}
