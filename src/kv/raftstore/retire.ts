import type { Message } from "../../raft/index.js";
import { MessageType, majority } from "../../raft/index.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { Peer } from "./peer.js";
import type { Store } from "./store.js";

/**
 * A leader that applied its own removal (peer.retiring) hands over before it goes: while it
 * leads, its heartbeats carry the commit index that includes the removal; once a quorum of the
 * survivors holds the removal it transfers leadership to the most caught-up one. As a follower
 * it still votes, and every heartbeat interval it asks each survivor with a probe stamped with
 * the epoch before its removal: a survivor that has applied the removal finds that epoch stale
 * and answers with a GC message, which destroys this peer (inbox.ts). Only after a long cap does
 * it go without that answer.
 */
const PROBE_CONTEXT = Buffer.from("tinykv-retired-peer-probe");

export function isRetirementProbe(m: Message): boolean {
  return m.msgType === MessageType.MsgHeartbeatResponse && m.context.equals(PROBE_CONTEXT);
}

/** One tick of a retiring peer; true when it should be destroyed without an answer (the cap). */
export function tickRetiring(store: Store, peer: Peer, tick: number): boolean {
  const r = peer.retiring!;
  const cfg = store.config;
  if (tick - r.sinceTick >= 300 * cfg.raftElectionTicks) {
    store.log.warn(
      { region_id: String(peer.regionId), peer_id: String(peer.meta.id) },
      "removed peer got no answer from the survivors; destroying it anyway",
    );
    return true;
  }
  if (peer.isLeader()) {
    handOver(peer, r.index);
    return false;
  }
  if (tick % cfg.raftHeartbeatTicks === 0)
    for (const survivor of peer.region.peers) store.transport.send(probe(peer, survivor));
  return false;
}

function handOver(peer: Peer, removalIndex: bigint): void {
  const prs = peer.raw.progress();
  let holders = 0;
  let best: { id: bigint; match: bigint } | undefined;
  for (const [id, pr] of prs) {
    if (id === peer.meta.id) continue;
    if (pr.match >= removalIndex) holders++;
    if (!best || pr.match > best.match) best = { id, match: pr.match };
  }
  const quorum = majority(prs.size);
  if (best && holders >= quorum) peer.raw.transferLeader(best.id);
}

function probe(peer: Peer, to: { id: bigint; storeId: bigint }): RaftMessage {
  const epoch = peer.region.regionEpoch!;
  const message = {
    msgType: MessageType.MsgHeartbeatResponse,
    to: to.id,
    from: peer.meta.id,
    term: peer.term,
    logTerm: 0n,
    index: 0n,
    entries: [],
    commit: 0n,
    snapshot: undefined,
    reject: false,
    rejectHint: 0n,
    context: PROBE_CONTEXT,
  } as Message;
  return {
    regionId: peer.regionId,
    fromPeer: peer.meta,
    toPeer: to,
    message,
    // The epoch before the removal: stale to exactly the survivors that applied it.
    regionEpoch: { ...epoch, confVer: epoch.confVer - 1n },
    isTombstone: false,
    startKey: Buffer.alloc(0),
    endKey: Buffer.alloc(0),
  };
}
