/**
 * Meta keys, TinyKV's layout (all integers big-endian uint64):
 *   01 01                       prepare-bootstrap (kv)
 *   01 02                       store ident (kv)
 *   01 04                       key layout version (kv; keyspace.ts)
 *   01 02 <region> 01 <index>   raft log entry (raft)
 *   01 02 <region> 02           raft local state (raft)
 *   01 02 <region> 03           apply state (kv)
 *   01 02 <region> 04 <index>   raw change record of entry <index> (kv; raw-changes.ts, ours)
 *   01 02 <region> 05           raw change records since: every entry after it has its record (kv; ours)
 *   01 03 <region> 01           region local state (kv)
 */
const LOCAL_PREFIX = 0x01;
const REGION_RAFT_PREFIX = 0x02;
const REGION_META_PREFIX = 0x03;
const RAFT_LOG_SUFFIX = 0x01;
const RAFT_STATE_SUFFIX = 0x02;
const APPLY_STATE_SUFFIX = 0x03;
const RAW_CHANGE_SUFFIX = 0x04;
const RAW_CHANGES_SINCE_SUFFIX = 0x05;
const REGION_STATE_SUFFIX = 0x01;

export const PREPARE_BOOTSTRAP_KEY = Buffer.from([LOCAL_PREFIX, 0x01]);
export const STORE_IDENT_KEY = Buffer.from([LOCAL_PREFIX, 0x02]);
export const KEY_LAYOUT_KEY = Buffer.from([LOCAL_PREFIX, 0x04]);
export const REGION_META_MIN_KEY = Buffer.from([LOCAL_PREFIX, REGION_META_PREFIX]);
export const REGION_META_MAX_KEY = Buffer.from([LOCAL_PREFIX, REGION_META_PREFIX + 1]);

function regionKey(prefix: number, regionId: bigint, suffix: number, extraLen = 0): Buffer {
  const key = Buffer.allocUnsafe(11 + extraLen);
  key[0] = LOCAL_PREFIX;
  key[1] = prefix;
  key.writeBigUInt64BE(regionId, 2);
  key[10] = suffix;
  return key;
}

export function raftLogKey(regionId: bigint, index: bigint): Buffer {
  const key = regionKey(REGION_RAFT_PREFIX, regionId, RAFT_LOG_SUFFIX, 8);
  key.writeBigUInt64BE(index, 11);
  return key;
}

export function raftStateKey(regionId: bigint): Buffer {
  return regionKey(REGION_RAFT_PREFIX, regionId, RAFT_STATE_SUFFIX);
}

export function applyStateKey(regionId: bigint): Buffer {
  return regionKey(REGION_RAFT_PREFIX, regionId, APPLY_STATE_SUFFIX);
}

export function rawChangeKey(regionId: bigint, index: bigint): Buffer {
  const key = regionKey(REGION_RAFT_PREFIX, regionId, RAW_CHANGE_SUFFIX, 8);
  key.writeBigUInt64BE(index, 11);
  return key;
}

export function rawChangesSinceKey(regionId: bigint): Buffer {
  return regionKey(REGION_RAFT_PREFIX, regionId, RAW_CHANGES_SINCE_SUFFIX);
}

/** Every raw change record key of the region: [gte, lt). */
export function rawChangeKeyRange(regionId: bigint): { gte: Buffer; lt: Buffer } {
  return {
    gte: regionKey(REGION_RAFT_PREFIX, regionId, RAW_CHANGE_SUFFIX),
    lt: regionKey(REGION_RAFT_PREFIX, regionId, RAW_CHANGE_SUFFIX + 1),
  };
}

export function regionStateKey(regionId: bigint): Buffer {
  return regionKey(REGION_META_PREFIX, regionId, REGION_STATE_SUFFIX);
}

/** The region id inside a region-state key (for the startup scan of all regions). */
export function regionIdFromStateKey(key: Buffer): bigint {
  return key.readBigUInt64BE(2);
}

/** Initial log position of a bootstrapped or split-created region, as TinyKV. */
export const RAFT_INIT_LOG_INDEX = 5n;
export const RAFT_INIT_LOG_TERM = 5n;
