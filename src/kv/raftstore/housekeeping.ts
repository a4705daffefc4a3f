import type { RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { AdminCmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { Logger } from "../../util/logger.js";
import type { Engine } from "../engine/index.js";
import type { RaftstoreConfig } from "./config.js";
import type { Peer } from "./peer.js";
import { checkSplit } from "./split-check.js";

// Periodic per-store chores driven by the store's tick: split checks and raft log GC.

/** What the split checker needs of its store. */
export interface SplitCheckContext {
  readonly stopped: boolean;
  readonly log: Logger;
  readonly config: RaftstoreConfig;
  readonly kv: Engine;
  readonly peers: ReadonlyMap<bigint, Peer>;
}

/** Leaders whose region grew enough since the last check are scanned, one region at a time. */
export async function runSplitChecks(
  store: SplitCheckContext,
  onSplitKey: (peer: Peer, splitKey: Buffer) => void,
): Promise<void> {
  try {
    for (const peer of [...store.peers.values()]) {
      if (store.stopped) return;
      if (!peer.isLeader() || peer.destroyed) continue;
      if (!peer.size.checkDue(store.config.regionSplitSize / 8)) continue;
      const region = peer.region;
      const result = await checkSplit(store.kv, region, store.config.regionSplitSize, store.config.regionMaxSize);
      peer.size.checked(result.approximateSize);
      if (result.splitKey && peer.isLeader() && peer.region.regionEpoch!.version === region.regionEpoch!.version) {
        onSplitKey(peer, result.splitKey);
      }
    }
  } catch (err) {
    store.log.warn({ err }, "split check failed; will retry on the next tick");
  }
}

/** What log GC needs of its store. */
export interface LogGcContext {
  readonly config: RaftstoreConfig;
  propose(req: RaftCmdRequest): Promise<RaftCmdResponse>;
}

/** Leader: propose a CompactLog once enough applied entries, or bytes of them, sit in the log. */
export function maybeCompactLog(store: LogGcContext, peer: Peer): void {
  if (!peer.isLeader()) return;
  const storage = peer.storage;
  const applied = storage.appliedIndex;
  const first = storage.firstIndex();
  const countLimit = BigInt(store.config.raftLogGcCountLimit);
  const sizeLimit = store.config.raftLogGcSizeLimit;
  if (applied <= first || (applied - first < countLimit && storage.logBytes < sizeLimit)) return;
  // Keep what replicating followers still need unless one lags too far (it then gets a snapshot).
  let compactIndex = applied;
  for (const [id, pr] of peer.raw.progress()) {
    if (id === peer.meta.id) continue;
    if (pr.match <= first || pr.match >= compactIndex || applied - pr.match >= countLimit) continue;
    if (storage.logBytesBetween(pr.match + 1n, applied + 1n) >= sizeLimit) continue;
    compactIndex = pr.match;
  }
  if (compactIndex <= first) return;
  const req = RaftCmdRequest.fromPartial({
    header: { regionId: peer.regionId, peer: peer.meta, regionEpoch: peer.region.regionEpoch },
    adminRequest: {
      cmdType: AdminCmdType.CompactLog,
      compactLog: { compactIndex, compactTerm: storage.term(compactIndex) },
    },
  });
  void store.propose(req);
}
