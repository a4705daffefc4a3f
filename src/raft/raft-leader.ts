// Leader behaviour: heartbeats, log replication (probe/replicate/snapshot flow control),
// commitment, leader transfer and ReadIndex. Functions take the Raft they act on.
import type { Entry, Message } from "./eraftpb.js";
import { EntryType, MessageType } from "./eraftpb.js";
import {
  ErrCompacted,
  ErrInvariant,
  ErrLogTemporarilyUnavailable,
  ErrProposalDropped,
  ErrSnapshotTemporarilyUnavailable,
} from "./errors.js";
import type { Progress } from "./progress.js";
import { ProgressState } from "./progress.js";
import { committedIndex, hasMajority } from "./quorum.js";
import type { Raft } from "./raft.js";
import { StateType } from "./raft-types.js";
import { minBig, newMessage } from "./util.js";

export function tickHeartbeat(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.electionTimeout) {
    r.electionElapsed = 0;
    if (r.checkQuorum && !quorumActive(r)) {
      // We cannot reach a quorum: stop serving as leader so clients look elsewhere.
      r.logger?.info(`${r.id} stepped down to follower since quorum is not active`);
      r.becomeFollower(r.term, 0n);
      return;
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (r.leadTransferee !== 0n) {
      r.logger?.info(
        `${r.id} abandoned the leader transfer to ${r.leadTransferee}: it did not finish within an election timeout`,
      );
      r.leadTransferee = 0n;
    }
  }
  if (r.state !== StateType.Leader) return;
  if (r.heartbeatElapsed >= r.heartbeatTimeout) {
    r.heartbeatElapsed = 0;
    r.step(newMessage({ msgType: MessageType.MsgBeat, from: r.id }));
  }
}

/** True if a quorum (the leader included) was heard from since the last call; resets the marks. */
function quorumActive(r: Raft): boolean {
  const active = hasMajority(r.prs.keys(), (id) => id === r.id || r.prs.get(id)!.recentActive, r.prs.size);
  for (const [id, pr] of r.prs) if (id !== r.id) pr.recentActive = false;
  return active;
}

/**
 * Appends entries at the leader's term. The leader's own copy counts toward a commit only once
 * the application reports it durable (ownEntriesPersisted): its appends go out while its own
 * write runs (Raft thesis 10.2.1), and a quorum must never include a copy a crash can lose.
 */
export function appendEntries(r: Raft, es: Entry[]): void {
  const li = r.raftLog.lastIndex();
  for (let i = 0; i < es.length; i++) {
    es[i]!.term = r.term;
    es[i]!.index = li + 1n + BigInt(i);
  }
  r.raftLog.append(es);
}

/** The leader's log is durable up to `index`: it counts itself, which may commit (a one-member quorum always). */
export function ownEntriesPersisted(r: Raft, index: bigint): void {
  const self = r.prs.get(r.id);
  if (!self?.maybeUpdate(index)) return;
  const before = r.raftLog.committed;
  if (maybeCommit(r)) {
    releasePendingReadIndexMessages(r);
    commitAdvanced(r, before);
  }
}

/** Advances the commit index to the highest index a quorum holds, if it is of this term. */
export function maybeCommit(r: Raft): boolean {
  if (r.prs.size === 0) return false;
  return r.raftLog.maybeCommit(committedIndex([...r.prs.values()].map((pr) => pr.match)), r.term);
}

/**
 * The commit index advanced from `before`: tell the followers now, or (lazyCommitBroadcast) with
 * what they need next, unless it reached pendingConfIndex (a membership change, or the entries a
 * new leader inherited, which may hold one): every member should apply that at once.
 */
export function commitAdvanced(r: Raft, before: bigint): void {
  const confChangeCommitted = r.pendingConfIndex > before && r.pendingConfIndex <= r.raftLog.committed;
  if (r.lazyCommitBroadcast && !confChangeCommitted) sendFetchedEntries(r);
  else bcastAppend(r);
}

export function bcastAppend(r: Raft): void {
  for (const id of r.prs.keys()) if (id !== r.id) maybeSendAppend(r, id, true);
}

/** Storage can serve entries it was reading from disk: send every follower what it still needs. */
export function sendFetchedEntries(r: Raft): void {
  for (const id of r.prs.keys()) if (id !== r.id) maybeSendAppend(r, id, false);
}

export function bcastHeartbeat(r: Raft, ctx?: Buffer): void {
  const context = ctx ?? r.readOnly.lastPendingRequestCtx();
  for (const [id, pr] of r.prs) if (id !== r.id) sendHeartbeat(r, id, pr, context);
}

function sendHeartbeat(r: Raft, to: bigint, pr: Progress, context: Buffer | undefined): void {
  // A follower may not have the leader's committed entries yet; never let it commit past
  // what it is known to match.
  const commit = minBig(pr.match, r.raftLog.committed);
  r.send(newMessage({ msgType: MessageType.MsgHeartbeat, to, commit, context }));
}

/**
 * Sends the follower the entries it needs (or a snapshot if they are compacted). With
 * sendIfEmpty false nothing is sent when there are no new entries. Returns whether it sent.
 */
export function maybeSendAppend(r: Raft, to: bigint, sendIfEmpty: boolean): boolean {
  const pr = r.prs.get(to);
  if (!pr || pr.isPaused()) return false;
  const prevIndex = pr.next - 1n;
  let prevTerm: bigint;
  let ents: Entry[];
  try {
    prevTerm = r.raftLog.term(prevIndex);
    ents = r.raftLog.entries(pr.next, r.maxMsgSize);
  } catch (e) {
    if (e instanceof ErrCompacted) return sendSnapshot(r, to, pr);
    // Storage is reading them from disk; onEntriesFetched() sends them.
    if (e instanceof ErrLogTemporarilyUnavailable) return false;
    throw e;
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  r.send(
    newMessage({
      msgType: MessageType.MsgAppend,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: r.raftLog.committed,
    }),
  );
  pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1]!.index : 0n);
  return true;
}

function sendSnapshot(r: Raft, to: bigint, pr: Progress): boolean {
  let snapshot;
  try {
    snapshot = r.raftLog.snapshot();
  } catch (e) {
    // The application is generating it; a later heartbeat response retries.
    if (e instanceof ErrSnapshotTemporarilyUnavailable) return false;
    throw e;
  }
  const index = snapshot.metadata?.index ?? 0n;
  if (index === 0n) throw new ErrInvariant(`need a non-empty snapshot to catch up ${to}`);
  r.send(newMessage({ msgType: MessageType.MsgSnapshot, to, snapshot }));
  pr.becomeSnapshot(index);
  return true;
}

export function stepLeader(r: Raft, m: Message): void {
  switch (m.msgType) {
    case MessageType.MsgBeat:
      bcastHeartbeat(r);
      return;
    case MessageType.MsgPropose:
      propose(r, m);
      return;
    case MessageType.MsgReadIndex:
      handleReadIndex(r, m);
      return;
    case MessageType.MsgTransferLeader:
      handleTransferLeader(r, m.from);
      return;
    default:
      break;
  }
  const pr = r.prs.get(m.from);
  if (!pr) return; // a response from a node no longer in the configuration
  switch (m.msgType) {
    case MessageType.MsgAppendResponse:
      handleAppendResponse(r, pr, m);
      return;
    case MessageType.MsgHeartbeatResponse:
      handleHeartbeatResponse(r, pr, m);
      return;
    case MessageType.MsgUnreachable:
      // Pipelined appends to it were probably lost: fall back to probing.
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      return;
    case MessageType.MsgSnapshotStatus:
      handleSnapshotStatus(r, pr, m);
      return;
    default:
      return; // e.g. late vote responses
  }
}

function propose(r: Raft, m: Message): void {
  if (m.entries.length === 0) throw new ErrInvariant(`${r.id} stepped an empty MsgPropose`);
  if (!r.prs.has(r.id)) throw new ErrProposalDropped(`leader ${r.id} is not in the configuration`);
  if (r.leadTransferee !== 0n) {
    throw new ErrProposalDropped(`leader transfer to ${r.leadTransferee} is in progress`);
  }
  const li = r.raftLog.lastIndex();
  let confIndex = 0n;
  for (let i = 0; i < m.entries.length; i++) {
    if (m.entries[i]!.entryType !== EntryType.EntryConfChange) continue;
    if (confIndex !== 0n || r.pendingConfIndex > r.raftLog.applied) {
      throw new ErrProposalDropped(`conf change pending at index ${r.pendingConfIndex} (applied ${r.raftLog.applied})`);
    }
    // A membership change must follow a committed entry of this leader's term: otherwise a
    // change from an older leader that this one has not seen could combine with it into two
    // disjoint majorities (the single-server change bug found by Ongaro).
    if (!committedEntryInCurrentTerm(r)) {
      throw new ErrProposalDropped(`leader ${r.id} has not committed an entry in term ${r.term} yet`);
    }
    confIndex = li + 1n + BigInt(i);
  }
  if (confIndex !== 0n) r.pendingConfIndex = confIndex;
  appendEntries(r, m.entries);
  bcastAppend(r);
}

function handleAppendResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  if (m.reject) {
    // The follower's hint (its last index, adjusted by term) skips whole conflicting terms.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0n) nextProbe = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return;
  }
  const oldPaused = pr.isPaused();
  if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe))) return;
  if (pr.state === ProgressState.Probe) {
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Snapshot && pr.match + 1n >= r.raftLog.firstIndex()) {
    // The follower can continue from the log: the snapshot (or an equivalent) arrived.
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Replicate) {
    pr.inflights.freeLE(m.index);
  }
  const before = r.raftLog.committed;
  if (maybeCommit(r)) {
    releasePendingReadIndexMessages(r);
    commitAdvanced(r, before);
  } else if (oldPaused) {
    maybeSendAppend(r, m.from, true);
  }
  // Fill the pipeline while the window has room.
  while (maybeSendAppend(r, m.from, false)) {
    // keep sending
  }
  if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) sendTimeoutNow(r, m.from);
}

function handleHeartbeatResponse(r: Raft, pr: Progress, m: Message): void {
  pr.recentActive = true;
  pr.msgAppFlowPaused = false;
  // A heartbeat round trip shows the link works: free one slot so a lost append is retried.
  if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.raftLog.lastIndex()) maybeSendAppend(r, m.from, true);
  if (m.context.length === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (!acks) return;
  if (!hasMajority(acks, (id) => r.prs.has(id), r.prs.size)) return;
  for (const rs of r.readOnly.advance(m.context)) respondToReadIndex(r, rs.req, rs.index);
}

/** The application reports how a snapshot it sent ended (reject = it failed). */
function handleSnapshotStatus(r: Raft, pr: Progress, m: Message): void {
  if (pr.state !== ProgressState.Snapshot) return;
  // On failure forget the snapshot index so the next probe does not assume it arrived.
  if (m.reject) pr.pendingSnapshot = 0n;
  r.logger?.info(`${r.id} snapshot to ${m.from} ${m.reject ? "failed" : "finished"}; probing it from ${pr.match + 1n}`);
  pr.becomeProbe();
  // Wait for the follower's answer (or a heartbeat response) before sending more.
  pr.msgAppFlowPaused = true;
}

function handleTransferLeader(r: Raft, transferee: bigint): void {
  const pr = r.prs.get(transferee);
  if (!pr) return; // not a member: nothing to transfer to
  const pending = r.leadTransferee;
  if (pending !== 0n) {
    if (pending === transferee) return; // same transfer already in progress
    r.leadTransferee = 0n; // a new request overrides the pending one
  }
  if (transferee === r.id) return; // already leader; also cancels a pending transfer
  // The transfer must finish within an election timeout.
  r.logger?.info(`${r.id} [term ${r.term}] starts to transfer leadership to ${transferee}`);
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.raftLog.lastIndex()) sendTimeoutNow(r, transferee);
  else maybeSendAppend(r, transferee, true);
}

function sendTimeoutNow(r: Raft, to: bigint): void {
  r.send(newMessage({ msgType: MessageType.MsgTimeoutNow, to }));
}

// ---- ReadIndex ---------------------------------------------------------------------------

function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.raftLog.termOrUndefined(r.raftLog.committed) === r.term;
}

/** Read requests held until the leader's first commit in its term; beyond this the oldest are dropped (their callers time out and retry). */
export const MAX_PENDING_READ_INDEX = 1024;

function handleReadIndex(r: Raft, m: Message): void {
  // Until the leader commits in its term, its commit index may be behind the cluster's.
  if (!committedEntryInCurrentTerm(r)) {
    r.pendingReadIndexMessages.push(m);
    if (r.pendingReadIndexMessages.length > MAX_PENDING_READ_INDEX) r.pendingReadIndexMessages.shift();
    return;
  }
  startReadIndexRound(r, m);
}

function startReadIndexRound(r: Raft, m: Message): void {
  if (r.prs.size === 1 && r.prs.has(r.id)) {
    respondToReadIndex(r, m, r.raftLog.committed); // a quorum of one: nobody else to confirm with
    return;
  }
  r.readOnly.addRequest(r.raftLog.committed, m);
  r.readOnly.recvAck(r.id, m.context);
  bcastHeartbeat(r, m.context);
}

/** Every path that advances the commit index calls this: held reads may go once the term has a commit. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !committedEntryInCurrentTerm(r)) return;
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) startReadIndexRound(r, m);
}

function respondToReadIndex(r: Raft, req: Message, index: bigint): void {
  if (req.from === 0n || req.from === r.id) {
    r.readStates.push({ index, requestCtx: req.context });
    return;
  }
  r.send(newMessage({ msgType: MessageType.MsgReadIndexResponse, to: req.from, index, context: req.context }));
}
