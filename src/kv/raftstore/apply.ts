import type { Entry } from "../../raft/eraftpb.js";
import { ConfChange, ConfChangeType, EntryType } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import type { AdminRequest, AdminResponse, Response } from "../../proto/raft_cmdpb.js";
import { AdminCmdType, CmdType, RaftCmdRequest, RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import type { WriteBatch } from "../engine/index.js";
import { parseCf } from "../engine/index.js";
import { keyInRange } from "../../util/bytes.js";
import { checkKeysInRegion, checkRegionEpoch } from "./epoch.js";
import type { RangeDeleteKeys } from "./delete-range.js";
import { applyDeleteRange, presentKeys } from "./delete-range.js";
import { malformedCommand } from "./command-shape.js";
import { errorResponse, regionErrors } from "./errors.js";
import type { PeerStorage } from "./peer-storage.js";
import { PeerState, RaftApplyState, RegionLocalState } from "../../proto/raft_serverpb.js";
import { applyStateKey, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM, regionStateKey } from "./keys.js";
import type { ConditionalReads } from "./conditional-write.js";
import { applyConditionalWrite } from "./conditional-write.js";
import { deleteRawChanges, RawChangeCollector, writeRawChangesSince } from "./raw-changes.js";

/** The header of every successful response (never mutated; responses stay in-process). */
const OK_HEADER = RaftCmdResponse.fromPartial({ header: {} }).header!;

/** What applying one Ready's committed entries did, for the store to act on after the kv batch is durable. */
export interface ApplyOutcome {
  responses: Array<{ index: bigint; term: bigint; resp: RaftCmdResponse }>;
  /** Raft log entries (from, to] to delete from the raft engine. */
  compacted?: { from: bigint; to: bigint };
  /** A conf change was applied (the region's peers changed). */
  confChanged: boolean;
  /** This peer was removed from the region: destroy it. */
  removedSelf: boolean;
  /** Regions created by splits, to start peers for. */
  splitRegions: Region[];
  /** The batch holds something that must be fsynced (admin state). */
  needsSync: boolean;
  /** Bytes of keys and values put, a hint for the split checker. */
  writtenBytes: number;
  /** The highest resolved ts an applied UpdateResolvedTs entry carried: the peer's new safe ts (safe-ts.ts). */
  resolvedTs?: bigint;
}

/** What apply needs of a peer. */
export interface ApplyTarget {
  storage: PeerStorage;
  selfPeerId: bigint;
  applyConfChange(cc: ConfChange): void;
  /** True when this store already has the region initialized (it caught up by snapshot first). */
  hasInitializedRegion(regionId: bigint): boolean;
  /** Told each entry applied, with the raw change record it wrote (RaftstoreObserver.applied). */
  onApplied?(entry: Entry, rawRecord: Buffer | undefined): void;
}

/**
 * Applies committed entries to the kv batch in order: data commands, admin commands and conf
 * changes, each checked against the region epoch at apply time (a split or conf change may
 * have been applied since it was proposed). The apply state goes in the same batch. `reads` holds
 * the keys the entries' conditional writes compare (prefetchConditionalReads).
 */
export function applyEntries(
  target: ApplyTarget,
  entries: Entry[],
  kvWb: WriteBatch,
  /** The keys of this turn's DeleteRange commands (scanRangeDeletes, delete-range.ts). */
  rangeKeys?: RangeDeleteKeys,
  reads?: ConditionalReads,
): ApplyOutcome {
  const out: ApplyOutcome = {
    responses: [],
    confChanged: false,
    removedSelf: false,
    splitRegions: [],
    needsSync: false,
    writtenBytes: 0,
  };
  const storage = target.storage;
  const raw = new RawChangeCollector();
  if (storage.rawChangesSince === undefined) {
    // The first apply of this region by a build that writes records: they start here.
    storage.rawChangesSince = storage.appliedIndex;
    writeRawChangesSince(kvWb, storage.region.id, storage.appliedIndex);
  }
  for (const entry of entries) {
    if (entry.index <= storage.appliedIndex) continue; // already applied (replayed after a restart)
    if (out.removedSelf) break;
    let resp: RaftCmdResponse | undefined;
    if (entry.entryType === EntryType.EntryConfChange) {
      resp = applyConfChange(target, entry, kvWb, out);
    } else if (entry.data.length > 0) {
      resp = applyNormal(target, entry, kvWb, out, rangeKeys?.get(entry), reads, raw);
    }
    // What the entry did to raw keys, even if a later command of it was refused: the batch keeps
    // the earlier ones' writes, so the record says what the data holds.
    const rawRecord = raw.finish(kvWb, storage.region.id, entry.index);
    storage.applyState = { ...storage.applyState, appliedIndex: entry.index };
    target.onApplied?.(entry, rawRecord);
    if (resp) out.responses.push({ index: entry.index, term: entry.term, resp });
  }
  storage.writeApplyState(kvWb);
  return out;
}

function applyNormal(
  target: ApplyTarget,
  entry: Entry,
  kvWb: WriteBatch,
  out: ApplyOutcome,
  rangeKeys: Buffer[][] | undefined,
  reads: ConditionalReads | undefined,
  raw: RawChangeCollector,
): RaftCmdResponse {
  const storage = target.storage;
  const decoded = decodeCommand(entry, storage.region.id);
  if ("refused" in decoded) return decoded.refused;
  const req = decoded.req;
  const epochErr = checkRegionEpoch(req, storage.region);
  if (epochErr) return errorResponse(epochErr);
  if (req.adminRequest) return applyAdmin(target, req.adminRequest, entry, kvWb, out, raw);
  const keyErr = checkKeysInRegion(req, storage.region);
  if (keyErr) return errorResponse(keyErr);
  const responses: Response[] = [];
  for (const [request, r] of req.requests.entries()) {
    switch (r.cmdType) {
      case CmdType.Put:
        kvWb.put(parseCf(r.put!.cf), r.put!.key, r.put!.value);
        reads?.wrote(parseCf(r.put!.cf), r.put!.key, r.put!.value);
        raw.put(parseCf(r.put!.cf), r.put!.key, r.put!.value, { request, write: 0 });
        out.writtenBytes += r.put!.key.length + r.put!.value.length;
        responses.push({ cmdType: CmdType.Put, put: {} });
        break;
      case CmdType.Delete:
        kvWb.delete(parseCf(r.delete!.cf), r.delete!.key);
        reads?.wrote(parseCf(r.delete!.cf), r.delete!.key, undefined);
        raw.delete(parseCf(r.delete!.cf), r.delete!.key);
        responses.push({ cmdType: CmdType.Delete, delete: {} });
        break;
      case CmdType.DeleteRange: {
        const keys = rangeKeys?.shift();
        // Recorded: the keys present now (before the deletes below), the same on every replica.
        const present = presentKeys(r.deleteRange!.cf, keys ?? [], reads);
        applyDeleteRange(r, kvWb, keys, reads);
        raw.deleteKeys(parseCf(r.deleteRange!.cf), present);
        responses.push({ cmdType: CmdType.DeleteRange, deleteRange: {} });
        break;
      }
      case CmdType.ConditionalWrite: {
        // Raw CAS and TTL (issue 18): compared and written here, in this entry's apply.
        const cas = applyConditionalWrite(r.conditionalWrite!, storage.region, kvWb, reads);
        if (cas.error) return cas.error;
        if (cas.response!.conditionalWrite!.succeed)
          for (const [write, w] of r.conditionalWrite!.writes.entries()) {
            if (w.put) raw.put(parseCf(w.put.cf), w.put.key, w.put.value, { request, write: write + 1 });
            else if (w.delete) raw.delete(parseCf(w.delete.cf), w.delete.key);
          }
        out.writtenBytes += cas.writtenBytes;
        responses.push(cas.response!);
        break;
      }
      default:
        // Reads are served by ReadIndex, never through the log; refuse rather than guess.
        return errorResponse(regionErrors.other(`command type ${CmdType[r.cmdType]} cannot be applied from the log`));
    }
  }
  return { header: OK_HEADER, responses, adminResponse: undefined };
}

function applyAdmin(
  target: ApplyTarget,
  admin: AdminRequest,
  entry: Entry,
  kvWb: WriteBatch,
  out: ApplyOutcome,
  raw: RawChangeCollector,
): RaftCmdResponse {
  const storage = target.storage;
  const ok = (adminResponse: Partial<AdminResponse>) =>
    RaftCmdResponse.fromPartial({ header: {}, adminResponse: { cmdType: admin.cmdType, ...adminResponse } });
  switch (admin.cmdType) {
    case AdminCmdType.CompactLog: {
      const { compactIndex, compactTerm } = admin.compactLog!;
      const old = storage.compactTo(compactIndex, compactTerm);
      if (old !== undefined) {
        out.compacted = { from: out.compacted?.from ?? old, to: compactIndex };
        out.needsSync = true;
        // The raw watch's records go with the log they came from (raw-changes.ts).
        deleteRawChanges(kvWb, storage.region.id, old, compactIndex);
      }
      return ok({ compactLog: {} });
    }
    case AdminCmdType.Split: {
      const resp = applySplit(target, admin, kvWb, out, ok);
      // A raw watch of the region ends at this index and goes on in the regions it made.
      if (resp.adminResponse?.split) raw.splitInto(resp.adminResponse.split.regions);
      return resp;
    }
    case AdminCmdType.UpdateResolvedTs: {
      // Writes nothing: the peer learns the ts once this batch is in the kv engine.
      const ts = admin.updateResolvedTs?.resolvedTs ?? 0n;
      if (out.resolvedTs === undefined || ts > out.resolvedTs) out.resolvedTs = ts;
      return ok({ updateResolvedTs: {} });
    }
    default:
      return errorResponse(
        regionErrors.other(
          `admin command ${AdminCmdType[admin.cmdType]} cannot be applied from the log (entry ${entry.index})`,
        ),
      );
  }
}

function applySplit(
  target: ApplyTarget,
  admin: AdminRequest,
  kvWb: WriteBatch,
  out: ApplyOutcome,
  ok: (r: Partial<AdminResponse>) => RaftCmdResponse,
): RaftCmdResponse {
  const split = admin.split!;
  const storage = target.storage;
  const region = storage.region;
  const key = split.splitKey;
  if (!keyInRange(key, region.startKey, region.endKey) || key.equals(region.startKey)) {
    return errorResponse(regionErrors.keyNotInRegion(key, region));
  }
  if (split.newPeerIds.length !== region.peers.length) {
    return errorResponse(
      regionErrors.other(
        `split of region ${region.id}: ${split.newPeerIds.length} new peer ids for ${region.peers.length} peers`,
      ),
    );
  }
  const epoch = region.regionEpoch!;
  const newEpoch = { confVer: epoch.confVer, version: epoch.version + 1n };
  const left: Region = {
    ...region,
    endKey: Buffer.from(key),
    regionEpoch: newEpoch,
    peers: region.peers.map((p) => ({ ...p })),
  };
  const right: Region = {
    id: split.newRegionId,
    startKey: Buffer.from(key),
    endKey: region.endKey,
    regionEpoch: { ...newEpoch },
    peers: region.peers.map((p, i): PeerMeta => ({ id: split.newPeerIds[i]!, storeId: p.storeId })),
  };
  storage.region = left;
  storage.writeRegionState(kvWb);
  // The new region's state goes in the same batch: a crash must not keep the shrunk left
  // region without the right one that now owns the upper half of the keys.
  // ...unless this store already holds the new region (it caught up by snapshot before this
  // split applied here): its newer state must not be reset to the split's initial one.
  if (!target.hasInitializedRegion(right.id)) writeNewRegionStates(kvWb, right);
  out.splitRegions.push(right);
  out.needsSync = true;
  return ok({ split: { regions: [left, right] } });
}

/** Region and apply state of a region created by a split: its log starts at (5, 5), as TinyKV. */
export function writeNewRegionStates(kvWb: WriteBatch, region: Region): void {
  kvWb.putMeta(
    regionStateKey(region.id),
    Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish()),
  );
  const apply = {
    appliedIndex: RAFT_INIT_LOG_INDEX,
    truncatedState: { index: RAFT_INIT_LOG_INDEX, term: RAFT_INIT_LOG_TERM },
  };
  kvWb.putMeta(applyStateKey(region.id), Buffer.from(RaftApplyState.encode(apply).finish()));
  writeRawChangesSince(kvWb, region.id, RAFT_INIT_LOG_INDEX);
}

function applyConfChange(
  target: ApplyTarget,
  entry: Entry,
  kvWb: WriteBatch,
  out: ApplyOutcome,
): RaftCmdResponse | undefined {
  const storage = target.storage;
  let cc: ConfChange;
  let req: RaftCmdRequest;
  try {
    cc = ConfChange.decode(entry.data);
    if (cc.context.length === 0) return undefined; // a conf change raft made itself (none today); nothing to answer
    req = RaftCmdRequest.decode(cc.context);
  } catch (err) {
    return refusedEntry(entry, storage.region.id, `the conf change does not decode: ${(err as Error).message}`);
  }
  const epochErr = checkRegionEpoch(req, storage.region);
  if (epochErr) return errorResponse(epochErr);
  const change = req.adminRequest?.changePeer;
  const peer = change?.peer;
  if (!change || !peer) return refusedEntry(entry, storage.region.id, "the conf change names no peer");
  // Raft applies cc.changeType and the region takes the context's: both must be one we make.
  if (!CONF_CHANGE_TYPES.has(cc.changeType) || cc.changeType !== change.changeType)
    return refusedEntry(
      entry,
      storage.region.id,
      `conf change type ${cc.changeType} (context ${change.changeType}) is not AddNode or RemoveNode on both`,
    );
  const region = storage.region;
  const epoch = region.regionEpoch!;
  const exists = region.peers.some((p) => p.id === peer.id);
  let peers = region.peers;
  if (change.changeType === ConfChangeType.AddNode) {
    if (exists)
      return RaftCmdResponse.fromPartial({
        header: {},
        adminResponse: { cmdType: AdminCmdType.ChangePeer, changePeer: { region } },
      });
    peers = [...region.peers, { ...peer }];
  } else {
    if (!exists)
      return RaftCmdResponse.fromPartial({
        header: {},
        adminResponse: { cmdType: AdminCmdType.ChangePeer, changePeer: { region } },
      });
    peers = region.peers.filter((p) => p.id !== peer.id);
    if (peer.id === target.selfPeerId) out.removedSelf = true;
  }
  storage.region = { ...region, peers, regionEpoch: { ...epoch, confVer: epoch.confVer + 1n } };
  target.applyConfChange({ ...cc, nodeId: peer.id });
  storage.writeRegionState(kvWb);
  out.confChanged = true;
  out.needsSync = true;
  return RaftCmdResponse.fromPartial({
    header: {},
    adminResponse: { cmdType: AdminCmdType.ChangePeer, changePeer: { region: storage.region } },
  });
}

/** The conf changes the raftstore proposes (ChangePeer: add or remove a voter). */
const CONF_CHANGE_TYPES = new Set<ConfChangeType>([ConfChangeType.AddNode, ConfChangeType.RemoveNode]);

/** An error answer for a logged entry that cannot be applied; it writes nothing. */
function refusedEntry(entry: Entry, regionId: bigint, why: string): RaftCmdResponse {
  return errorResponse(regionErrors.other(`region ${regionId} entry ${entry.index} (term ${entry.term}): ${why}`));
}

/** The entry's command, or the answer refusing it: bytes that do not decode, or a malformed command. */
function decodeCommand(entry: Entry, regionId: bigint): { req: RaftCmdRequest } | { refused: RaftCmdResponse } {
  let req: RaftCmdRequest;
  try {
    req = RaftCmdRequest.decode(entry.data);
  } catch (err) {
    return { refused: refusedEntry(entry, regionId, `does not decode: ${(err as Error).message}`) };
  }
  const malformed = malformedCommand(req);
  return malformed ? { refused: refusedEntry(entry, regionId, malformed) } : { req };
}
