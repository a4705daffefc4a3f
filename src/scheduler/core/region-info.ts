import { Peer, Region, RegionEpoch } from "../../proto/metapb.js";

/** What the scheduler knows about one region: its meta, leader, pending peers and size. */
export interface RegionInfo {
  readonly meta: Region;
  readonly leader?: Peer;
  readonly pendingPeers: readonly Peer[];
  /** Approximate size in MiB (0 when unknown). */
  readonly approximateSize: number;
}

const MIB = 1n << 20n;

/** Converts a heartbeat's approximate size in bytes to MiB, at least 1 for a non-empty region. */
export function sizeFromBytes(bytes: bigint): number {
  if (bytes <= 0n) return 0;
  const mib = Number(bytes / MIB);
  return Math.max(mib, 1);
}

export function newRegionInfo(
  meta: Region,
  leader?: Peer,
  opts: { pendingPeers?: Peer[]; approximateSize?: number } = {},
): RegionInfo {
  return {
    meta: Region.create({ ...meta, regionEpoch: RegionEpoch.create(meta.regionEpoch ?? {}) }),
    leader: leader ? Peer.create(leader) : undefined,
    pendingPeers: (opts.pendingPeers ?? []).map((p) => Peer.create(p)),
    approximateSize: opts.approximateSize ?? 0,
  };
}

export function epochOf(r: RegionInfo): RegionEpoch {
  return r.meta.regionEpoch ?? RegionEpoch.create();
}

/** TinyKV's IsEpochStale: a is stale against b when either counter went backwards. */
export function isEpochStale(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version < b.version || a.confVer < b.confVer;
}

export function storePeer(r: RegionInfo, storeId: bigint): Peer | undefined {
  return r.meta.peers.find((p) => p.storeId === storeId);
}

export function storeIdsOf(r: RegionInfo): Set<bigint> {
  return new Set(r.meta.peers.map((p) => p.storeId));
}

export function leaderStoreId(r: RegionInfo): bigint | undefined {
  return r.leader?.storeId;
}

export function followers(r: RegionInfo): Peer[] {
  return r.meta.peers.filter((p) => !r.leader || p.id !== r.leader.id);
}

export function isPending(r: RegionInfo, peerId: bigint): boolean {
  return r.pendingPeers.some((p) => p.id === peerId);
}

/** True when nothing a heartbeat carries differs (the update may be skipped). */
export function sameRegionInfo(a: RegionInfo, b: RegionInfo): boolean {
  return (
    Buffer.from(Region.encode(a.meta).finish()).equals(Buffer.from(Region.encode(b.meta).finish())) &&
    (a.leader?.id ?? 0n) === (b.leader?.id ?? 0n) &&
    (a.leader?.storeId ?? 0n) === (b.leader?.storeId ?? 0n) &&
    a.approximateSize === b.approximateSize &&
    a.pendingPeers.length === b.pendingPeers.length &&
    a.pendingPeers.every((p, i) => p.id === b.pendingPeers[i]!.id)
  );
}

export function withRegion(r: RegionInfo, patch: Partial<RegionInfo>): RegionInfo {
  return { ...r, ...patch };
}
