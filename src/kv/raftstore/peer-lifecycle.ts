import { ConfChange, ConfChangeType, Entry, EntryType, HardState } from "../../raft/eraftpb.js";
import { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import { PeerState, RaftApplyState, RaftLocalState, RegionLocalState } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import type { Engine } from "../engine/index.js";
import type { RaftstoreConfig } from "./config.js";
import {
  RAFT_INIT_LOG_INDEX,
  RAFT_INIT_LOG_TERM,
  raftLogKey,
  raftStateKey,
  REGION_META_MAX_KEY,
  REGION_META_MIN_KEY,
} from "./keys.js";
import type { RaftstoreObserver } from "./observer.js";
import { Peer } from "./peer.js";
import { initialRaftState, PeerStorage } from "./peer-storage.js";

// Where peers come from (a restart, a message, a split) and how they go (the destroy queue).

/** What creating a peer needs of its store. */
export interface PeerHost {
  readonly storeId: bigint;
  readonly config: RaftstoreConfig;
  readonly runtime: Runtime;
  readonly log: Logger;
  readonly observer: RaftstoreObserver;
  readonly kv: Engine;
  readonly raftEngine: Engine;
  readonly peers: ReadonlyMap<bigint, Peer>;
  /** Monotonic ms when the store (re)started. */
  readonly startedAt: number;
  /** Wakes the store loop (see PeerEnv). */
  wake(soon?: boolean): void;
}

/** The election timeout in ms: how long a restarted peer holds its vote. */
function electionTimeoutMs(host: PeerHost): number {
  return host.config.raftElectionTicks * host.config.raftBaseTickMs;
}

/**
 * A peer created after its store started (by a message or a split) for a region this store
 * already had a peer of (a persisted term): that earlier peer, uninitialized and so not loaded at
 * start, may have acknowledged a leader's heartbeats, and with them its lease, just before the
 * restart. Like a peer loaded at start it grants no vote until an election timeout after the start.
 */
function holdVotesIfJustRestarted(host: PeerHost, peer: Peer, hardState: HardState | undefined): void {
  if (!hardState || hardState.term === 0n) return;
  const left = host.startedAt + electionTimeoutMs(host) - host.runtime.monotonicNow();
  if (left > 0) peer.restarted(left);
}

function newPeer(host: PeerHost, meta: PeerMeta, storage: PeerStorage): Peer {
  return new Peer(host.storeId, meta, storage, {
    config: host.config,
    runtime: host.runtime,
    log: host.log,
    observer: host.observer,
    wake: (soon) => host.wake(soon),
  });
}

/** Every region this store holds, from the kv engine: live peers, and regions it left (tombstones). */
export async function loadPeers(host: PeerHost): Promise<{ peers: Peer[]; tombstones: Region[]; left: PeerStorage[] }> {
  const snap = host.kv.snapshot();
  const regions: Array<{ state: PeerState; region: Region }> = [];
  try {
    for await (const { value } of snap.rawRange(REGION_META_MIN_KEY, REGION_META_MAX_KEY)) {
      const st = RegionLocalState.decode(value);
      regions.push({ state: st.state, region: st.region! });
    }
  } finally {
    await snap.close();
  }
  const out: { peers: Peer[]; tombstones: Region[]; left: PeerStorage[] } = { peers: [], tombstones: [], left: [] };
  for (const { state, region } of regions) {
    if (state === PeerState.Tombstone) {
      out.tombstones.push(region);
      continue;
    }
    const meta = region.peers.find((p) => p.storeId === host.storeId);
    const storage = await PeerStorage.load(host.kv, host.raftEngine, region);
    if (!meta) {
      // This store applied its own removal and crashed before destroying the peer. The survivors
      // may not know the removal committed (a 2-peer region needs this peer's vote): the peer
      // comes back retiring (retire.ts) when its removal entry names it; otherwise the region is
      // left, so late messages cannot create a new peer, and its destroy is finished (`left`).
      const removed = await removedSelf(host, storage);
      host.log.warn(
        { region_id: String(region.id), retiring: removed !== undefined },
        "region state without a peer on this store: its removal applied before a restart",
      );
      if (removed) {
        const peer = newPeer(host, removed, storage);
        peer.restarted(electionTimeoutMs(host));
        peer.retire(storage.appliedIndex, 0);
        out.peers.push(peer);
        continue;
      }
      out.tombstones.push(region);
      out.left.push(storage);
      continue;
    }
    if (host.config.deliberateBugs?.has("forget-vote-on-restart") && storage.raftState.hardState)
      storage.raftState.hardState.vote = 0n;
    const peer = newPeer(host, meta, storage);
    peer.restarted(electionTimeoutMs(host));
    out.peers.push(peer);
  }
  return out;
}

/** This store's peer, as named by the removal the region applied last (its applied entry), if that is what it was. */
async function removedSelf(host: PeerHost, storage: PeerStorage): Promise<PeerMeta | undefined> {
  try {
    const buf = await host.raftEngine.getMeta(raftLogKey(storage.region.id, storage.appliedIndex));
    const entry = buf && Entry.decode(buf);
    if (!entry || entry.entryType !== EntryType.EntryConfChange) return undefined;
    const change = RaftCmdRequest.decode(ConfChange.decode(entry.data).context).adminRequest?.changePeer;
    const peer = change?.peer;
    const removal = change?.changeType === ConfChangeType.RemoveNode && peer?.storeId === host.storeId;
    return removal ? { ...peer } : undefined;
  } catch {
    return undefined; // not a removal this store can read back
  }
}

/** The term and vote this store last persisted for a region (zero when it never had a peer of it). */
export async function persistedHardState(raftEngine: Engine, regionId: bigint): Promise<HardState> {
  const buf = await raftEngine.getMeta(raftStateKey(regionId));
  return (buf ? RaftLocalState.decode(buf).hardState : undefined) ?? HardState.create();
}

/** An uninitialized peer, created by a message, that waits for a snapshot; it keeps the term and vote persisted for its region. */
export function createUninitializedPeer(host: PeerHost, regionId: bigint, meta: PeerMeta, hardState: HardState): Peer {
  const region: Region = {
    id: regionId,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
    regionEpoch: { confVer: 0n, version: 0n },
    peers: [],
  };
  const raftState = RaftLocalState.create({ hardState: { term: hardState.term, vote: hardState.vote, commit: 0n } });
  const storage = new PeerStorage(
    region,
    raftState,
    RaftApplyState.create({ truncatedState: { index: 0n, term: 0n } }),
    [],
  );
  const peer = newPeer(host, meta, storage);
  holdVotesIfJustRestarted(host, peer, hardState);
  host.log.info(
    { region_id: String(regionId), peer_id: String(meta.id), term: String(hardState.term) },
    "created uninitialized peer from a message",
  );
  return peer;
}

/**
 * The peer of a region a split created, replacing an uninitialized peer of it (which is
 * destroyed); undefined when the region already caught up here by snapshot or has no peer here.
 */
export async function createSplitPeer(host: PeerHost, parent: Peer, region: Region): Promise<Peer | undefined> {
  // An uninitialized peer of the new region may have voted here, perhaps before a restart.
  const persisted = host.peers.has(region.id) ? undefined : await persistedHardState(host.raftEngine, region.id);
  const existing = host.peers.get(region.id);
  if (existing?.storage.isInitialized()) return undefined; // it already caught up by snapshot
  existing?.handle({ type: "destroy" });
  const meta = region.peers.find((p) => p.storeId === host.storeId);
  if (!meta) return undefined;
  const storage = new PeerStorage(
    region,
    // Keep the replaced uninitialized peer's term and vote: it may have voted in this region.
    initialRaftState(existing?.storage.raftState.hardState ?? persisted, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM),
    { appliedIndex: RAFT_INIT_LOG_INDEX, truncatedState: { index: RAFT_INIT_LOG_INDEX, term: RAFT_INIT_LOG_TERM } },
    [],
  );
  const peer = newPeer(host, meta, storage);
  holdVotesIfJustRestarted(host, peer, existing?.storage.raftState.hardState ?? persisted);
  peer.persistRaftStateNextTurn();
  host.log.info({ region_id: String(region.id), parent: String(parent.regionId) }, "region split: new peer created");
  return peer;
}

/**
 * Peers to destroy. The region worker removes a peer from the store at once and clears its data
 * in the background, except while the peer's snapshot installs: that peer waits for a later turn.
 */
export class DestroyQueue {
  private readonly waiting = new Set<Peer>();

  constructor(private readonly worker: { destroy(peer: Peer): boolean }) {}

  /** Destroys the peer now, or on a later turn if its snapshot is installing. */
  destroy(peer: Peer): void {
    if (!this.worker.destroy(peer)) this.waiting.add(peer);
  }

  /** Destroys the peer on the next turn. */
  later(peer: Peer): void {
    this.waiting.add(peer);
  }

  /** Destroys the waiting peers whose snapshot is no longer installing. */
  retry(): void {
    for (const peer of this.waiting) if (this.worker.destroy(peer)) this.waiting.delete(peer);
  }
}
