// Reads served by any peer of a region, not only its leader (issue 18):
// - a replica read: a follower asks the leader for a read index (raft forwards its MsgReadIndex),
//   waits until it applied that far, and serves from its own engine. As linearizable as a leader
//   read: the read index is the leader's commit index, confirmed by a quorum after the read arrived.
// - a stale read at a ts: a peer whose safe ts (safe-ts.ts) is at or above the ts serves it from
//   its engine at once, without talking to the leader.
import type { RawNode } from "../../raft/index.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { Engine } from "../engine/index.js";
import { checkRegionEpoch } from "./epoch.js";
import { regionErrors } from "./errors.js";
import type { Peer } from "./peer.js";
import type { QueuedRead, ReadOutcome, ReadQueue } from "./reads.js";

/** How a read may be served; the default (neither) is a leader read. */
export interface ReadMode {
  /** Any peer may serve it after a ReadIndex round-trip to the leader. */
  replica?: boolean;
  /** Any peer whose safe ts is >= `staleTs` serves it from its own data, at once. */
  staleTs?: bigint;
}

/** Who served the reads a store answered, for its metrics (what a test or an operator looks at). */
export class ReplicaReadCounters {
  /** Replica reads a follower here served after a ReadIndex round-trip. */
  followerServed = 0;
  /** Stale reads this store served (leader or follower) from its safe ts. */
  staleServed = 0;
  /** Stale reads refused with DataIsNotReady (the client retries at the leader). */
  staleNotReady = 0;
}

/** Why a follower does not take a replica read, if it does not: it serves nothing while it has no data or is retiring. */
export function replicaReadRefusal(peer: Peer, retiring: boolean): RegionErrorPb | undefined {
  if (retiring || !peer.storage.isInitialized()) return regionErrors.notLeader(peer.regionId);
  return undefined;
}

/**
 * A follower's turn for the reads that arrived: the replica reads go to the leader as one
 * ReadIndex (raft forwards it); the others lost their leader since they arrived. Without a known
 * leader raft would drop the request silently, so the reads are refused now (the client retries).
 */
export function sendFollowerReadIndex(
  raw: RawNode,
  reads: ReadQueue,
  batch: QueuedRead[],
  notLeader: RegionErrorPb,
): void {
  const leaderKnown = raw.basicStatus().softState.lead !== 0n;
  const replicas: QueuedRead[] = [];
  for (const w of batch) {
    if (w.replica && leaderKnown) replicas.push(w);
    else w.done({ error: notLeader });
  }
  if (replicas.length > 0) raw.readIndex(reads.sent(replicas));
}

/**
 * A stale read at `ts`: served from a kv snapshot taken now if this peer's safe ts covers it.
 * The safe ts only moves once the entry that carried it is in the kv engine, so the snapshot
 * holds every commit at or below it.
 */
export function staleRead(
  peer: Peer,
  req: RaftCmdRequest,
  ts: bigint,
  kv: Engine,
  counters: ReplicaReadCounters,
): ReadOutcome {
  const refusal = replicaReadRefusal(peer, peer.retiring !== undefined) ?? checkRegionEpoch(req, peer.region);
  if (refusal) return { error: refusal };
  const safeTs = peer.safeTs.value;
  if (safeTs < ts) {
    counters.staleNotReady++;
    return { error: regionErrors.dataIsNotReady(peer.regionId, peer.meta.id, safeTs, ts) };
  }
  counters.staleServed++;
  return { region: peer.region, snapshot: kv.snapshot() };
}
