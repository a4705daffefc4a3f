import { Entry } from "../../raft/eraftpb.js";
import type { Engine } from "../engine/index.js";
import { entryBytes } from "./entry-cache.js";
import { raftLogKey } from "./keys.js";
import type { Logger } from "../../util/logger.js";
import type { RaftstoreConfig } from "./config.js";
import type { Peer } from "./peer.js";
import type { LogFetchRequest } from "./peer-storage.js";

/** What tending a peer's raft log needs of its store. */
export interface LogFetchContext {
  readonly stopped: boolean;
  readonly log: Logger;
  readonly config: RaftstoreConfig;
  readonly raftEngine: Engine;
  readonly peers: ReadonlyMap<bigint, Peer>;
}

// The memory side of a peer's raft log: its entry cache stays within raftEntryCacheSize, and
// entries older than the cache are read from the raft engine in the background when a follower
// needs them (raft skipped the send with ErrLogTemporarilyUnavailable; onEntriesFetched wakes it).

/**
 * Once per loop turn and peer: trim the entry cache and start the reads raft asked for. Applied
 * entries every follower has are dropped at once (an idle region keeps no cache, so memory does
 * not grow with the number of regions); those a lagging follower still needs stay within the
 * byte budget. A follower needs none of its applied entries: if it is elected, it reads them back.
 */
export function tendRaftLog(store: LogFetchContext, peer: Peer): void {
  if (peer.destroyed) return;
  const applied = peer.raw.basicStatus().applied;
  let replicated = applied;
  if (peer.isLeader()) {
    for (const [id, pr] of peer.raw.progress()) if (id !== peer.meta.id && pr.match < replicated) replicated = pr.match;
  }
  peer.storage.evictEntryCache(replicated, 0);
  peer.storage.evictEntryCache(applied, store.config.raftEntryCacheSize);
  for (const req of peer.storage.takeFetchRequests()) void fetchEntries(store, peer, req);
}

async function fetchEntries(store: LogFetchContext, peer: Peer, req: LogFetchRequest): Promise<void> {
  let entries: Entry[];
  try {
    entries = await readRaftLog(store.raftEngine, peer.regionId, req);
  } catch (err) {
    peer.storage.onFetchFailed(req.lo);
    // Raft asks again on the follower's next heartbeat response; a stopping store closed the engine.
    if (!store.stopped)
      store.log.warn({ err, region_id: peer.regionId, lo: req.lo }, "reading raft log entries for a follower failed");
    return;
  }
  if (store.stopped || peer.destroyed || store.peers.get(peer.regionId) !== peer) return;
  peer.handle({ type: "entriesFetched", lo: req.lo, entries });
}

/** Entries [lo, hi) of a region's raft log from the raft engine: at least one, stopping before maxSize bytes. */
export async function readRaftLog(raft: Engine, regionId: bigint, req: LogFetchRequest): Promise<Entry[]> {
  const out: Entry[] = [];
  let size = 0;
  const snap = raft.snapshot();
  try {
    for await (const { value } of snap.rawRange(raftLogKey(regionId, req.lo), raftLogKey(regionId, req.hi))) {
      const e = Entry.decode(value);
      size += entryBytes(e);
      if (out.length > 0 && req.maxSize !== undefined && size > req.maxSize) break;
      out.push(e);
    }
  } finally {
    await snap.close();
  }
  return out;
}
