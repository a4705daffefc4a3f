/**
 * Column families are key prefixes, as in TinyKV: a CF key is stored as `<cf>_<key>`.
 * Meta keys (region state, apply state, raft log...) start with 0x01 and so never collide
 * with a CF key, whose first byte is a lowercase letter.
 *
 * Two key spaces share the engine and never mix: Percolator's `default`/`lock`/`write` (TinyKV's
 * layout) and the raw API's own `raw_default`/`raw_lock`/`raw_write`. Clients name only the first
 * three; the raw API maps them onto its own CFs (src/kv/storage/raw-keyspace.ts), so no raw key
 * can ever be read, routed or split as a transactional one (src/kv/raftstore/keyspace.ts).
 */
import { TinyKvError } from "../../util/errors.js";
export const CF_DEFAULT = "default";
export const CF_LOCK = "lock";
export const CF_WRITE = "write";
export const RAW_CF_DEFAULT = "raw_default";
export const RAW_CF_LOCK = "raw_lock";
export const RAW_CF_WRITE = "raw_write";
/**
 * Raw TTL (issue 18): the expiry of a raw key, under the key itself, one CF per raw CF. Kept
 * apart so a value written without a ttl is stored byte for byte as before.
 */
export const RAW_CF_TTL_DEFAULT = "raw_ttl_default";
export const RAW_CF_TTL_LOCK = "raw_ttl_lock";
export const RAW_CF_TTL_WRITE = "raw_ttl_write";
/** The CF names of the wire (the raw API's `cf` field). */
export const CLIENT_CFS = [CF_DEFAULT, CF_LOCK, CF_WRITE] as const;
/** Every CF of the engine: snapshots and range clearing walk all of them. */
// Snapshots number CFs by their place here: new ones go at the end.
export const ALL_CFS = [
  CF_DEFAULT,
  CF_LOCK,
  CF_WRITE,
  RAW_CF_DEFAULT,
  RAW_CF_LOCK,
  RAW_CF_WRITE,
  RAW_CF_TTL_DEFAULT,
  RAW_CF_TTL_LOCK,
  RAW_CF_TTL_WRITE,
] as const;
export type CfName = (typeof ALL_CFS)[number];
export type ClientCfName = (typeof CLIENT_CFS)[number];

const prefixes = new Map<string, Buffer>(ALL_CFS.map((cf) => [cf, Buffer.from(`${cf}_`)]));
/** First key after every key of a CF: `<cf>` followed by the byte after '_'. */
const upperBounds = new Map<string, Buffer>(ALL_CFS.map((cf) => [cf, Buffer.from(`${cf}\x60`)]));

export class UnknownCfError extends TinyKvError {
  constructor(readonly cf: string) {
    super(`unknown column family ${JSON.stringify(cf)} (expected one of ${CLIENT_CFS.join(", ")})`);
    this.name = "UnknownCfError";
  }
}

export function isCfName(cf: string): cf is CfName {
  return prefixes.has(cf);
}

/** Checks a CF name of a stored command (any engine CF); the empty string means `default`. */
export function parseCf(cf: string): CfName {
  if (cf === "") return CF_DEFAULT;
  if (!isCfName(cf)) throw new UnknownCfError(cf);
  return cf;
}

/** Checks a CF name from the wire: only the client names; the empty string means `default`, as TinyKV clients send it. */
export function parseClientCf(cf: string): ClientCfName {
  if (cf === "") return CF_DEFAULT;
  if (!(CLIENT_CFS as readonly string[]).includes(cf)) throw new UnknownCfError(cf);
  return cf as ClientCfName;
}

export function cfPrefix(cf: CfName): Buffer {
  return prefixes.get(cf)!;
}

export function cfKey(cf: CfName, key: Uint8Array): Buffer {
  const p = prefixes.get(cf)!;
  const out = Buffer.allocUnsafe(p.length + key.length);
  p.copy(out, 0);
  out.set(key, p.length);
  return out;
}

/** The engine key bounds of the user-key range [start, end) in a CF; empty end = end of the CF. */
export function cfRange(cf: CfName, start: Uint8Array, end: Uint8Array): { gte: Buffer; lt: Buffer } {
  return { gte: cfKey(cf, start), lt: end.length === 0 ? upperBounds.get(cf)! : cfKey(cf, end) };
}
