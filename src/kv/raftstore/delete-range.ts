/**
 * DeleteRange (raft_cmdpb CmdType 7, TiKV's): one raft command that deletes every stored key of a
 * CF in [start, end), clipped to the region, when it applies. Apply is synchronous and writes into
 * the turn's one kv batch, but finding the keys of a range needs the engine's (async) iterators;
 * so before a turn applies, the store loop calls scanRangeDeletes, which lists the keys each
 * DeleteRange of the turn will delete: the range's keys in the engine as the previous turns left
 * it, plus the keys that the entries before it in the same turn put in the range (they are in the
 * batch, not yet in the engine). Entries after it in the turn come after its deletes in the batch.
 * Every replica lists the same keys from the same applied state, so they all delete the same.
 * The listed keys' values also go into the turn's ConditionalReads, which apply keeps current:
 * a DeleteRange's raw change record names only the keys present when it applies (a key listed
 * because an earlier entry of the turn put it, or deleted since the scan, may be absent by then),
 * so the record does not depend on how a replica's turns happened to group the entries.
 */
import type { Entry } from "../../raft/eraftpb.js";
import { EntryType } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import type { DeleteRangeRequest, Request } from "../../proto/raft_cmdpb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { CfName, Engine, WriteBatch } from "../engine/index.js";
import { ConditionalReads, holdsConditionalWrite, prefetchConditionalReads } from "./conditional-write.js";
import { CF_DEFAULT, isCfName, parseCf } from "../engine/index.js";
import { keyInRange } from "../../util/bytes.js";
import { regionKeyRange } from "./keyspace.js";
import { holdsRequestField } from "./entry-fields.js";

/** raft_cmdpb.Request's delete_range field: an entry without it in any request holds no DeleteRange. */
const DELETE_RANGE_FIELD = 8;

/** The keys each DeleteRange request of a turn deletes, by entry, in the entry's request order. */
export type RangeDeleteKeys = Map<Entry, Buffer[][]>;

/** The part of a stored key range [lower, upper) that lies in the region (upper empty = no end). */
export function clipToRegion(
  cf: string,
  start: Buffer,
  end: Buffer,
  region: Region,
): { lower: Buffer; upper: Buffer } | undefined {
  const bounds = regionKeyRange(isCfName(cf) ? cf : parseCf(cf), region);
  const lower = Buffer.compare(start, bounds.lower) > 0 ? start : bounds.lower;
  const upper =
    end.length === 0
      ? bounds.upper
      : bounds.upper.length === 0 || Buffer.compare(end, bounds.upper) < 0
        ? end
        : bounds.upper;
  if (upper.length > 0 && Buffer.compare(lower, upper) >= 0) return undefined;
  return { lower, upper };
}

/** Whether the whole range [start, end) lies in the region (the check at proposal and apply). */
export function rangeInRegion(r: DeleteRangeRequest, region: Region): boolean {
  const cf = isCfName(r.cf) ? r.cf : undefined;
  if (!cf) return false;
  const bounds = regionKeyRange(cf, region);
  if (!keyInRange(r.startKey, bounds.lower, bounds.upper)) return false;
  if (bounds.upper.length === 0) return true;
  return r.endKey.length > 0 && Buffer.compare(r.endKey, bounds.upper) <= 0;
}

/** The entry's command; undefined for one that is not a data entry or does not decode (apply refuses it). */
function decodeNormal(entry: Entry): RaftCmdRequest | undefined {
  if (entry.entryType !== EntryType.EntryNormal || entry.data.length === 0) return undefined;
  try {
    return RaftCmdRequest.decode(entry.data);
  } catch (err) {
    void err; // apply answers the entry with the decode error, on every replica alike
    return undefined;
  }
}

/** Whether entries not yet applied hold a DeleteRange: a walk of each entry's wire tags, no decode. */
export function mayHoldRangeDelete(entries: Entry[], appliedIndex: bigint): boolean {
  for (const e of entries) if (e.index > appliedIndex && holdsRequestField(e, DELETE_RANGE_FIELD)) return true;
  return false;
}

/**
 * Lists the keys of every DeleteRange among one peer's committed entries of this turn (entries at
 * or below `appliedIndex` are skipped, as apply skips them). Call it when mayHoldRangeDelete says
 * so; the common turn has none and never comes here.
 */
export async function scanRangeDeletes(
  kv: Engine,
  region: Region,
  entries: Entry[],
  appliedIndex: bigint,
  out: RangeDeleteKeys,
  reads: ConditionalReads,
): Promise<void> {
  const pending = entries.filter((e) => e.index > appliedIndex);
  // Keys put by earlier requests of this turn, per CF: in the batch, not in the engine yet.
  const putThisTurn: { cf: CfName; key: Buffer }[] = [];
  // By the CF apply writes: "" is `default` there (parseCf); a CF apply refuses puts nothing.
  const putTo = (cf: string, key: Buffer) => {
    const name = cf === "" ? CF_DEFAULT : isCfName(cf) ? cf : undefined;
    if (name) putThisTurn.push({ cf: name, key });
  };
  for (const entry of pending) {
    const req = decodeNormal(entry);
    if (!req || req.adminRequest) continue;
    const lists: Buffer[][] = [];
    for (const r of req.requests) {
      if (r.cmdType === CmdType.Put && r.put) putTo(r.put.cf, r.put.key);
      // A conditional write's puts may not happen (its comparison fails); deleting an absent key is harmless.
      if (r.cmdType === CmdType.ConditionalWrite && r.conditionalWrite)
        for (const w of r.conditionalWrite.writes) if (w.put) putTo(w.put.cf, w.put.key);
      if (r.cmdType !== CmdType.DeleteRange || !r.deleteRange) continue;
      lists.push(await keysOfRange(kv, r.deleteRange, region, putThisTurn, reads));
    }
    if (lists.length > 0) out.set(entry, lists);
  }
}

async function keysOfRange(
  kv: Engine,
  r: DeleteRangeRequest,
  region: Region,
  putThisTurn: { cf: CfName; key: Buffer }[],
  reads: ConditionalReads,
): Promise<Buffer[]> {
  const cf = isCfName(r.cf) ? r.cf : undefined;
  if (!cf) return []; // apply refuses it: nothing to list
  const clipped = clipToRegion(r.cf, r.startKey, r.endKey, region);
  if (!clipped) return [];
  const keys: Buffer[] = [];
  const stored = new Set<string>();
  const snap = kv.snapshot();
  try {
    // Keys only: apply needs to know which keys hold a value, never the values (up to 8 MiB each).
    for await (const key of snap.keys(cf, clipped.lower, clipped.upper)) {
      keys.push(key);
      stored.add(key.toString("latin1"));
      // Present, unless an earlier scan or a conditional write's prefetch of this turn says already.
      if (!reads.watched(cf, key)) reads.set(cf, key, PRESENT);
    }
  } finally {
    await snap.close();
  }
  for (const p of putThisTurn) {
    if (p.cf !== cf || !keyInRange(p.key, clipped.lower, clipped.upper)) continue;
    keys.push(p.key);
    // Not among the stored keys: absent as the turn began (its put, earlier in the turn, makes it present).
    if (!reads.watched(cf, p.key)) reads.set(cf, p.key, stored.has(p.key.toString("latin1")) ? PRESENT : undefined);
  }
  return keys;
}

/**
 * What the turn's reads hold for a key a DeleteRange lists: "a value is there". Only its presence
 * is ever asked of it (presentKeys); a conditional write's compared keys are read in full before
 * the scan, which leaves them as they are.
 */
const PRESENT = Buffer.alloc(0);

/**
 * The keys of a DeleteRange's list that hold a value now, as the turn's apply has kept them, in
 * key order (the list has the engine's keys first, then the turn's puts).
 */
export function presentKeys(cf: string, keys: Buffer[], reads: ConditionalReads | undefined): Buffer[] {
  const present =
    !reads || !isCfName(cf) ? keys : keys.filter((k) => !reads.watched(cf, k) || reads.read(cf, k) !== undefined);
  return [...present].sort(Buffer.compare);
}

/**
 * What a turn reads before it applies: the keys of its DeleteRanges, per peer over all of that
 * peer's entries of the turn (a leader's second Ready must see the keys its first one puts, which
 * are in the batch and not yet in the engine), and the values its conditional writes compare.
 * Both undefined-free maps are empty and `reads` undefined in the usual turn: nothing is read.
 */
export async function readsForTurn(
  kv: Engine,
  peers: Array<{ region: Region; appliedIndex: bigint; entries: Entry[] }>,
): Promise<{ rangeKeys: RangeDeleteKeys; reads: ConditionalReads | undefined }> {
  const rangeKeys: RangeDeleteKeys = new Map();
  const conditional = peers.flatMap((p) => p.entries.filter(holdsConditionalWrite));
  // Conditional writes compare what the engine holds now (nothing of this turn is written yet).
  let reads = conditional.length > 0 ? await prefetchConditionalReads(kv, conditional) : undefined;
  for (const p of peers) {
    if (!mayHoldRangeDelete(p.entries, p.appliedIndex)) continue;
    reads ??= new ConditionalReads();
    await scanRangeDeletes(kv, p.region, p.entries, p.appliedIndex, rangeKeys, reads);
  }
  return { rangeKeys, reads };
}

/**
 * Applies one DeleteRange request: deletes the keys scanRangeDeletes listed for it. `keys` is
 * undefined only if the store loop did not scan this turn, a bug that must not pass as success.
 */
export function applyDeleteRange(
  r: Request,
  kvWb: WriteBatch,
  keys: Buffer[] | undefined,
  reads: ConditionalReads | undefined,
): void {
  if (!keys) throw new Error("DeleteRange applied without the keys of its range (scanRangeDeletes was not run)");
  const cf = parseCf(r.deleteRange!.cf);
  for (const key of keys) {
    kvWb.delete(cf, key);
    // A conditional write later in this turn must compare against the key as deleted.
    reads?.wrote(cf, key, undefined);
  }
}
