import type { Error as RegionErrorPb } from "../proto/errorpb.js";
import type { Context } from "../proto/kvrpcpb.js";
import type { Peer, Region } from "../proto/metapb.js";
import type { SchedulerApi } from "../scheduler/api.js";
import { keyInRange } from "../util/bytes.js";
import type { Logger } from "../util/logger.js";
import { silentLogger } from "../util/logger.js";
import { realRuntime } from "../util/runtime.js";
import type { TlsConfig } from "../util/tls.js";
import { KvClientClosedError, NoRegionError } from "./errors.js";
import type { KvConnection, KvConnectionFactory } from "./kv-connection.js";
import { TinyKvRpc } from "./kv-rpc.js";

/** gRPC connections (the default). */
export const grpcKvConnection: KvConnectionFactory = (addr, timeoutMs) => new TinyKvRpc(addr, timeoutMs);

/** gRPC connections with mutual TLS when `tls` is given, else the default ones. */
export function grpcKvConnectionWith(tls: TlsConfig | undefined): KvConnectionFactory {
  if (!tls) return grpcKvConnection;
  return (addr, timeoutMs) => new TinyKvRpc(addr, timeoutMs, {}, realRuntime, tls);
}

/** A region as the client knows it, with the peer it currently sends requests to. */
export interface CachedRegion {
  region: Region;
  /** Index into region.peers of the peer believed to lead (or the next one to try). */
  leaderIdx: number;
  /** Peers tried without an answer since the last success; past peers.length the region is reloaded. */
  failedPeers: number;
  /** Set on an entry loaded again because a replica read found it with one peer (replicaTarget). */
  peersReloaded?: boolean;
}

/** Where one request goes: the region (with the epoch it was routed with), the peer, its store. */
export interface RpcTarget {
  /** The cache entry it was routed by (may since have been replaced). */
  cached: CachedRegion;
  region: Region;
  peer: Peer;
  addr: string;
  rpc: KvConnection;
  ctx: Context;
}

/**
 * The client's view of the cluster's routing: regions sorted by start key (fed by the scheduler,
 * corrected by the region errors stores answer), store addresses, and one connection per store
 * address. Region ranges are raw user keys.
 */
export class RegionCache {
  /** Sorted by start key; ranges do not overlap. */
  private regions: CachedRegion[] = [];
  private readonly storeAddrs = new Map<bigint, string>();
  private readonly rpcs = new Map<string, KvConnection>();
  /** Scheduler lookups in flight, by key (hex): concurrent misses on one key share one GetRegion. */
  private readonly lookups = new Map<string, Promise<CachedRegion>>();
  /** Set by close(): operations still retrying must not open connections again. */
  private closed = false;

  constructor(
    private readonly scheduler: SchedulerApi,
    private readonly rpcTimeoutMs: number,
    private readonly log: Logger = silentLogger,
    private readonly connect: KvConnectionFactory = grpcKvConnection,
  ) {}

  /** Cached regions in key order (a copy), for tools and tests. */
  snapshot(): Region[] {
    return this.regions.map((c) => c.region);
  }

  /** Index of the last region whose start key is <= key, or -1. */
  private floor(key: Uint8Array): number {
    let lo = 0;
    let hi = this.regions.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (Buffer.compare(this.regions[mid]!.region.startKey, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private cached(key: Uint8Array): CachedRegion | undefined {
    const i = this.floor(key);
    const c = i >= 0 ? this.regions[i] : undefined;
    return c && keyInRange(key, c.region.startKey, c.region.endKey) ? c : undefined;
  }

  /** The region holding `key`: from the cache, else asked from the scheduler. */
  async locate(key: Uint8Array): Promise<CachedRegion> {
    const hit = this.cached(key);
    if (hit) return hit;
    const id = Buffer.from(key).toString("hex");
    let p = this.lookups.get(id);
    if (!p) {
      p = this.scheduler
        .getRegion(key)
        .then((got) => {
          if (!got || got.region.peers.length === 0) throw new NoRegionError(Buffer.from(key));
          return this.insert(got.region, got.leader);
        })
        .finally(() => this.lookups.delete(id));
      this.lookups.set(id, p);
    }
    return p;
  }

  /** The region with this id: from the cache, else asked from the scheduler (a raw watch follows a region by id). */
  async locateById(regionId: bigint): Promise<CachedRegion> {
    const hit = this.regions.find((c) => c.region.id === regionId);
    if (hit) return hit;
    const got = await this.scheduler.getRegionById(regionId);
    if (!got || got.region.peers.length === 0) throw new NoRegionError(Buffer.alloc(0), regionId);
    return this.insert(got.region, got.leader, true);
  }

  /**
   * Puts a region in the cache, dropping the cached ones it overlaps. `leader` (when known and a
   * member) becomes the target peer; otherwise a previous leader of the same region id is kept.
   * With `keepNewer`, a region older than the cached one of the same id is ignored.
   */
  insert(region: Region, leader?: Peer, keepNewer = false): CachedRegion {
    const old = this.regions.find((c) => c.region.id === region.id);
    if (keepNewer && old && isOlder(region, old.region)) return old; // a late answer about an older epoch
    let leaderIdx = leader ? region.peers.findIndex((p) => p.id === leader.id) : -1;
    if (leaderIdx < 0 && old) {
      const oldLeader = old.region.peers[old.leaderIdx];
      leaderIdx = oldLeader ? region.peers.findIndex((p) => p.id === oldLeader.id) : -1;
    }
    const entry: CachedRegion = { region, leaderIdx: Math.max(0, leaderIdx), failedPeers: 0 };
    const start = region.startKey;
    const end = region.endKey;
    this.regions = this.regions.filter((c) => {
      const r = c.region;
      const overlaps =
        (end.length === 0 || Buffer.compare(r.startKey, end) < 0) &&
        (r.endKey.length === 0 || Buffer.compare(start, r.endKey) < 0);
      return !overlaps && r.id !== region.id;
    });
    const at = this.floor(start) + 1;
    this.regions.splice(at, 0, entry);
    return entry;
  }

  invalidate(regionId: bigint): void {
    this.regions = this.regions.filter((c) => c.region.id !== regionId);
  }

  /** Forgets every cached region (e.g. for a fresh view in tinykv-ctl). */
  clear(): void {
    this.regions = [];
  }

  async storeAddr(storeId: bigint): Promise<string> {
    const known = this.storeAddrs.get(storeId);
    if (known) return known;
    const { store } = await this.scheduler.getStore(storeId);
    if (!store.address) throw new Error(`scheduler knows no address for store ${storeId}`);
    this.storeAddrs.set(storeId, store.address);
    return store.address;
  }

  /** The shared connection to a store address (created on first use; none once closed). */
  rpcFor(addr: string): KvConnection {
    if (this.closed) throw new KvClientClosedError();
    let rpc = this.rpcs.get(addr);
    if (!rpc) {
      rpc = this.connect(addr, this.rpcTimeoutMs);
      this.rpcs.set(addr, rpc);
    }
    return rpc;
  }

  /** Where a request for `key` goes now. */
  async target(key: Uint8Array): Promise<RpcTarget> {
    return this.targetOf(await this.locate(key));
  }

  /** Round robin over followers for replica and stale reads (read-options.ts). */
  private replicaTurn = 0;

  /**
   * Where a replica or stale read of `key` goes: the region's followers in turn, so reads spread
   * over them and off the leader (the leader itself when the region has no other peer).
   */
  async replicaTarget(key: Uint8Array, flags: Pick<Context, "replicaRead" | "staleRead">): Promise<RpcTarget> {
    let c = await this.locate(key);
    // Cached before its replicas were added, a region would send every replica read to the
    // leader until some error reloaded it: ask the scheduler once for this entry.
    if (c.region.peers.length < 2 && !c.peersReloaded) {
      this.invalidate(c.region.id);
      c = await this.locate(key);
      c.peersReloaded = true;
    }
    const followers = c.region.peers.filter((_, i) => i !== c.leaderIdx);
    const peer = followers.length > 0 ? followers[this.replicaTurn++ % followers.length] : undefined;
    const t = await this.targetOf(c, peer);
    return { ...t, ctx: { ...t.ctx, ...flags } };
  }

  async targetOf(c: CachedRegion, to?: Peer): Promise<RpcTarget> {
    const peer = to ?? c.region.peers[c.leaderIdx] ?? c.region.peers[0];
    if (!peer) throw new NoRegionError(Buffer.from(c.region.startKey));
    const addr = await this.storeAddr(peer.storeId);
    return {
      cached: c,
      region: c.region,
      peer,
      addr,
      rpc: this.rpcFor(addr),
      ctx: { regionId: c.region.id, regionEpoch: c.region.regionEpoch, peer, term: 0n },
    };
  }

  /** A request reached the region and succeeded: its peer is a good target. */
  onSuccess(t: RpcTarget): void {
    if (t.cached.failedPeers !== 0) t.cached.failedPeers = 0;
  }

  /**
   * The store of `t` did not answer: forget its address (it may have moved) and try the region's
   * next peer; once every peer failed, reload the region from the scheduler.
   */
  onSendFail(t: RpcTarget): void {
    for (const [id, addr] of this.storeAddrs) if (addr === t.addr) this.storeAddrs.delete(id);
    const c = this.regions.find((x) => x.region.id === t.region.id);
    if (!c) return;
    c.failedPeers++;
    if (c.failedPeers >= c.region.peers.length) {
      this.invalidate(c.region.id);
      return;
    }
    c.leaderIdx = (c.leaderIdx + 1) % c.region.peers.length;
  }

  /**
   * Updates the cache from a region error answered for a request routed with `t`. Returns whether
   * the retry may go at once (a leader hint to follow) rather than after a backoff.
   */
  onRegionError(t: RpcTarget, err: RegionErrorPb): boolean {
    const id = t.region.id;
    // A stale read above that replica's safe ts: nothing wrong with the routing, the retry goes to the leader.
    if (err.dataIsNotReady) return true;
    if (err.notLeader) {
      const c = this.regions.find((x) => x.region.id === id);
      const hint = err.notLeader.leader;
      if (!c) return false;
      const idx = hint && hint.id !== 0n ? c.region.peers.findIndex((p) => p.id === hint.id) : -1;
      // A hint naming another peer than the one that answered is news even when an answer to a
      // concurrent request already moved the cache there: follow it, do not rotate past it.
      if (idx >= 0 && hint!.id !== t.peer.id) {
        if (idx !== c.leaderIdx) {
          c.leaderIdx = idx;
          this.log.debug({ region_id: id.toString(), leader_peer: hint!.id.toString() }, "leader hint followed");
        }
        return true;
      }
      if (hint && hint.id !== 0n && idx < 0) {
        // A leader this cache does not know as a member: the membership changed; reload.
        this.invalidate(id);
        return true;
      }
      // No (new) hint: an election is probably running; try the next peer after a backoff
      // (unless another answer already moved the cache off the peer that answered).
      if (c.region.peers[c.leaderIdx]?.id === t.peer.id)
        c.leaderIdx = (c.leaderIdx + 1) % Math.max(1, c.region.peers.length);
      return false;
    }
    if (err.epochNotMatch) {
      const current = err.epochNotMatch.currentRegions;
      if (current.length === 0) this.invalidate(id);
      else for (const r of current) this.insert(r, r.id === id ? t.peer : undefined, true);
      this.log.debug(
        { region_id: id.toString(), current: current.map((r) => r.id.toString()) },
        "epoch not match: cache updated",
      );
      return current.length > 0;
    }
    if (err.storeNotMatch) {
      this.storeAddrs.delete(t.peer.storeId);
    }
    // KeyNotInRegion, RegionNotFound, StoreNotMatch, StaleCommand, or only a message (timeout,
    // busy): what we know of this region is doubtful; ask the scheduler again after a backoff.
    this.invalidate(id);
    return false;
  }

  close(): void {
    this.closed = true;
    for (const rpc of this.rpcs.values()) rpc.close();
    this.rpcs.clear();
  }
}

/** True when `a`'s epoch is older than `b`'s (in version or conf_ver) and newer in neither. */
function isOlder(a: Region, b: Region): boolean {
  const ea = a.regionEpoch;
  const eb = b.regionEpoch;
  if (!ea || !eb) return false;
  const older = ea.version < eb.version || ea.confVer < eb.confVer;
  const newer = ea.version > eb.version || ea.confVer > eb.confVer;
  return older && !newer;
}
