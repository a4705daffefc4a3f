import type { Region } from "../../proto/metapb.js";
import { PeerState, RaftApplyState, RaftLocalState, RegionLocalState, StoreIdent } from "../../proto/raft_serverpb.js";
import type { Engine } from "../engine/index.js";
import {
  applyStateKey,
  PREPARE_BOOTSTRAP_KEY,
  RAFT_INIT_LOG_INDEX,
  RAFT_INIT_LOG_TERM,
  raftStateKey,
  regionStateKey,
  STORE_IDENT_KEY,
} from "./keys.js";
import { initialRaftState } from "./peer-storage.js";
import { TinyKvError } from "../../util/errors.js";

export class BootstrapError extends TinyKvError {
  constructor(message: string) {
    super(message);
    this.name = "BootstrapError";
  }
}

export async function readStoreIdent(kv: Engine): Promise<StoreIdent | undefined> {
  const buf = await kv.getMeta(STORE_IDENT_KEY);
  return buf ? StoreIdent.decode(buf) : undefined;
}

/** Marks the engines as store `storeId` of cluster `clusterId`. */
export async function writeStoreIdent(kv: Engine, clusterId: bigint, storeId: bigint): Promise<void> {
  await kv
    .newBatch()
    .putMeta(STORE_IDENT_KEY, Buffer.from(StoreIdent.encode({ clusterId, storeId }).finish()))
    .write(true);
}

/**
 * Writes a region's initial state on this store, as TinyKV's bootstrap does: region state,
 * apply state and raft state at index/term 5, so every replica starts with the same log.
 */
export async function writeInitialRegion(kv: Engine, raft: Engine, region: Region, prepare = false): Promise<void> {
  const state = Buffer.from(RegionLocalState.encode({ state: PeerState.Normal, region }).finish());
  const apply = RaftApplyState.encode({
    appliedIndex: RAFT_INIT_LOG_INDEX,
    truncatedState: { index: RAFT_INIT_LOG_INDEX, term: RAFT_INIT_LOG_TERM },
  }).finish();
  const kvWb = kv
    .newBatch()
    .putMeta(regionStateKey(region.id), state)
    .putMeta(applyStateKey(region.id), Buffer.from(apply));
  if (prepare) kvWb.putMeta(PREPARE_BOOTSTRAP_KEY, state);
  await kvWb.write(true);
  const raftState = RaftLocalState.encode(
    initialRaftState(undefined, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM),
  ).finish();
  await raft.newBatch().putMeta(raftStateKey(region.id), Buffer.from(raftState)).write(true);
}

export async function readPrepareBootstrap(kv: Engine): Promise<Region | undefined> {
  const buf = await kv.getMeta(PREPARE_BOOTSTRAP_KEY);
  return buf ? RegionLocalState.decode(buf).region : undefined;
}

export async function clearPrepareBootstrap(kv: Engine): Promise<void> {
  await kv.newBatch().deleteMeta(PREPARE_BOOTSTRAP_KEY).write(true);
}

/** Undo a prepared bootstrap that lost the race to another store. */
export async function clearPreparedRegion(kv: Engine, raft: Engine, regionId: bigint): Promise<void> {
  await kv
    .newBatch()
    .deleteMeta(PREPARE_BOOTSTRAP_KEY)
    .deleteMeta(regionStateKey(regionId))
    .deleteMeta(applyStateKey(regionId))
    .write(true);
  await raft.newBatch().deleteMeta(raftStateKey(regionId)).write(true);
}
