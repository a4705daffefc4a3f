// Candidate and pre-candidate behaviour: asking for votes, counting them, and giving up when a
// leader shows itself or the election is lost.
import type { Message } from "./eraftpb.js";
import { MessageType } from "./eraftpb.js";
import { ErrProposalDropped } from "./errors.js";
import { VoteResult, voteResult } from "./quorum.js";
import type { Raft } from "./raft.js";
import * as follower from "./raft-follower.js";
import * as leader from "./raft-leader.js";
import { CAMPAIGN_TRANSFER, CampaignType, StateType } from "./raft-types.js";
import { newMessage, voteRespType } from "./util.js";

/** Starts an election (or a pre-election, which changes neither term nor vote). */
export function campaign(r: Raft, t: CampaignType): void {
  let term: bigint;
  let voteMsg: MessageType;
  if (t === CampaignType.PreElection) {
    r.becomePreCandidate();
    voteMsg = MessageType.MsgRequestPreVote;
    term = r.term + 1n; // the term we would campaign at; ours stays unchanged
  } else {
    r.becomeCandidate();
    voteMsg = MessageType.MsgRequestVote;
    term = r.term;
  }
  if (poll(r, r.id, voteRespType(voteMsg), true) === VoteResult.Won) {
    if (t === CampaignType.PreElection) campaign(r, CampaignType.Election);
    else r.becomeLeader();
    return;
  }
  const index = r.raftLog.lastIndex();
  const logTerm = r.raftLog.lastTerm();
  const context = t === CampaignType.Transfer ? CAMPAIGN_TRANSFER : undefined;
  for (const id of r.nodes()) {
    if (id === r.id) continue;
    r.logger?.info(
      `${r.id} [logterm: ${logTerm}, index: ${index}] sent ${MessageType[voteMsg]} request to ${id} at term ${term}`,
    );
    r.send(newMessage({ msgType: voteMsg, to: id, term, index, logTerm, context }));
  }
}

/** Records a vote (the first from each member counts) and tallies the members' votes. */
function poll(r: Raft, id: bigint, t: MessageType, granted: boolean): VoteResult {
  if (!r.votes.has(id)) r.votes.set(id, granted);
  const result = voteResult(r.prs.keys(), r.votes);
  if (r.logger) {
    r.logger.info(`${r.id} received ${MessageType[t]}${granted ? "" : " rejection"} from ${id} at term ${r.term}`);
    let yes = 0;
    for (const v of r.votes.values()) if (v) yes++;
    r.logger.info(`${r.id} has received ${yes} ${MessageType[t]} votes and ${r.votes.size - yes} vote rejections`);
  }
  return result;
}

export function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp =
    r.state === StateType.PreCandidate ? MessageType.MsgRequestPreVoteResponse : MessageType.MsgRequestVoteResponse;
  switch (m.msgType) {
    case MessageType.MsgPropose:
      throw new ErrProposalDropped("no leader (election in progress)");
    case MessageType.MsgAppend:
      r.becomeFollower(m.term, m.from);
      follower.handleAppendEntries(r, m);
      return;
    case MessageType.MsgHeartbeat:
      r.becomeFollower(m.term, m.from);
      follower.handleHeartbeat(r, m);
      return;
    case MessageType.MsgSnapshot:
      r.becomeFollower(m.term, m.from);
      follower.handleSnapshot(r, m);
      return;
    case myVoteResp: {
      const res = poll(r, m.from, m.msgType, !m.reject);
      if (res === VoteResult.Won) {
        if (r.state === StateType.PreCandidate) {
          campaign(r, CampaignType.Election);
        } else {
          r.becomeLeader();
          leader.bcastAppend(r);
        }
      } else if (res === VoteResult.Lost) {
        r.becomeFollower(r.term, 0n);
      }
      return;
    }
    default:
      return; // MsgTimeoutNow, stale responses, reads without a leader: dropped
  }
}
