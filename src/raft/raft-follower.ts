// Follower behaviour: accepting appends, heartbeats and snapshots (a candidate that hears from a
// leader uses the same handlers), forwarding requests that only the leader can serve.
import type { Message } from "./eraftpb.js";
import { MessageType } from "./eraftpb.js";
import { ErrInvariant, ErrProposalDropped } from "./errors.js";
import { Progress } from "./progress.js";
import type { Raft } from "./raft.js";
import { CampaignType } from "./raft-types.js";
import { minBig, newMessage } from "./util.js";

export function stepFollower(r: Raft, m: Message): void {
  switch (m.msgType) {
    case MessageType.MsgPropose:
      throw new ErrProposalDropped(r.lead === 0n ? "no leader" : `not leader (leader is ${r.lead})`);
    case MessageType.MsgAppend:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      return;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case MessageType.MsgSnapshot:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case MessageType.MsgTransferLeader:
    case MessageType.MsgReadIndex:
      // Only the leader can serve these; without a known leader the request is dropped and the
      // application retries.
      if (r.lead === 0n) return;
      r.send({ ...m, to: r.lead, term: 0n });
      return;
    case MessageType.MsgTimeoutNow:
      // The leader asked us to take over: campaign at once, bypassing PreVote and leases.
      r.hup(CampaignType.Transfer);
      return;
    case MessageType.MsgReadIndexResponse:
      r.readStates.push({ index: m.index, requestCtx: m.context });
      return;
    default:
      return;
  }
}

export function handleAppendEntries(r: Raft, m: Message): void {
  const log = r.raftLog;
  if (m.index < log.committed) {
    r.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from, index: log.committed }));
    return;
  }
  const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from, index: lastNew }));
    return;
  }
  // Reject with a hint: the largest index whose term is <= the leader's logTerm. The leader
  // can jump straight there instead of probing one index at a time.
  const [hintIndex, hintTerm] = log.findConflictByTerm(minBig(m.index, log.lastIndex()), m.logTerm);
  r.send(
    newMessage({
      msgType: MessageType.MsgAppendResponse,
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    }),
  );
}

export function handleHeartbeat(r: Raft, m: Message): void {
  // The leader sends min(our match, its commit), which we are known to hold.
  r.raftLog.commitTo(minBig(m.commit, r.raftLog.lastIndex()));
  r.send(newMessage({ msgType: MessageType.MsgHeartbeatResponse, to: m.from, context: m.context }));
}

export function handleSnapshot(r: Raft, m: Message): void {
  const s = m.snapshot;
  if (!s?.metadata) throw new ErrInvariant(`${r.id} received MsgSnapshot from ${m.from} without metadata`);
  const index = restore(r, m) ? r.raftLog.lastIndex() : r.raftLog.committed;
  r.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from, index }));
}

/** Installs the snapshot in the log; false if it is stale or our log already contains it. */
function restore(r: Raft, m: Message): boolean {
  const s = m.snapshot!;
  const meta = s.metadata!;
  if (meta.index <= r.raftLog.committed) return false;
  if (r.raftLog.matchTerm(meta.index, meta.term)) {
    // Our log already has the snapshot's last entry: just fast-forward the commit index.
    r.raftLog.commitTo(meta.index);
    return false;
  }
  r.raftLog.restore(s);
  const last = r.raftLog.lastIndex();
  r.prs = new Map();
  for (const id of meta.confState?.nodes ?? []) {
    r.prs.set(id, new Progress(last + 1n, id === r.id ? last : 0n, r.maxInflight));
  }
  return true;
}
