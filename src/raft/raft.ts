// The Raft state machine: terms, role transitions, voting and message dispatch. Each role's
// behaviour lives with it (raft-leader.ts, raft-candidate.ts, raft-follower.ts) and operates on
// this class; quorum arithmetic is in quorum.ts.
// Pure: no I/O, no timers; output accumulates in msgs/readStates and the log's unstable tail.
import type { ConfState, HardState, Message } from "./eraftpb.js";
import { EntryType, MessageType } from "./eraftpb.js";
import { ErrInvalidConfig, ErrInvariant } from "./errors.js";
import { Progress } from "./progress.js";
import { RaftLog } from "./raft-log.js";
import { ReadOnly } from "./read-only.js";
import { seededRandom } from "./random.js";
import { isEmptyHardState, minBig, newMessage, voteRespType } from "./util.js";
import * as candidate from "./raft-candidate.js";
import * as follower from "./raft-follower.js";
import * as leader from "./raft-leader.js";
import type { RaftConfig, RaftLogger, ReadState, SoftState } from "./raft-types.js";
import { CAMPAIGN_TRANSFER, CampaignType, StateType } from "./raft-types.js";

export class Raft {
  readonly id: bigint;
  term = 0n;
  vote = 0n;
  readonly raftLog: RaftLog;
  prs = new Map<bigint, Progress>();
  state = StateType.Follower;
  votes = new Map<bigint, boolean>();
  msgs: Message[] = [];
  lead = 0n;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  heartbeatElapsed = 0;
  /** Ticks since the last election timeout reset (leader: since the last check-quorum round). */
  electionElapsed = 0;
  /** Target of a leader transfer in progress, 0 if none. */
  leadTransferee = 0n;
  /** Log index of the latest conf change; a new one is refused until it is applied. */
  pendingConfIndex = 0n;
  readOnly = new ReadOnly();
  /** ReadIndex requests that wait until the leader commits an entry of its own term. */
  pendingReadIndexMessages: Message[] = [];
  readStates: ReadState[] = [];
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly stepDownOnRemoval: boolean;
  readonly lazyCommitBroadcast: boolean;
  readonly maxMsgSize: number;
  readonly maxInflight: number;
  readonly logger: RaftLogger | undefined;
  private readonly random: () => number;

  constructor(c: RaftConfig) {
    if (c.id === 0n) throw new ErrInvalidConfig("cannot use 0 as raft id");
    if (c.heartbeatTick <= 0) throw new ErrInvalidConfig("heartbeatTick must be greater than 0");
    if (c.electionTick <= c.heartbeatTick) {
      throw new ErrInvalidConfig("electionTick must be greater than heartbeatTick");
    }
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = c.maxInflightMsgs ?? 256;
    if (this.maxInflight <= 0) throw new ErrInvalidConfig("maxInflightMsgs must be greater than 0");
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? true;
    this.lazyCommitBroadcast = c.lazyCommitBroadcast ?? false;
    this.random = c.random ?? seededRandom(Number(BigInt.asUintN(32, c.id * 2654435761n)));
    this.logger = c.logger;
    this.raftLog = new RaftLog(c.storage);
    const { hardState, confState } = c.storage.initialState();
    const nodes = confState.nodes.length > 0 ? confState.nodes : (c.peers ?? []);
    for (const n of nodes) this.prs.set(n, new Progress(1n, 0n, this.maxInflight));
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0n) this.raftLog.appliedTo(c.applied);
    const log = this.raftLog;
    this.logger?.info(
      `${this.id} created: peers (${this.nodes().join(" ")}), term ${this.term}, commit ${log.committed}, ` +
        `applied ${log.applied}, lastindex ${log.lastIndex()}, lastterm ${log.lastTerm()}`,
    );
    this.becomeFollower(this.term, 0n);
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new ErrInvariant(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** Current membership, sorted. */
  nodes(): bigint[] {
    return [...this.prs.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  confState(): ConfState {
    return { nodes: this.nodes() };
  }

  /** Queues a message, stamping from and (for non-vote messages) the current term. */
  send(m: Message): void {
    if (m.from === 0n) m.from = this.id;
    const t = m.msgType;
    if (
      t === MessageType.MsgRequestVote ||
      t === MessageType.MsgRequestVoteResponse ||
      t === MessageType.MsgRequestPreVote ||
      t === MessageType.MsgRequestPreVoteResponse
    ) {
      // Vote messages carry the term they are about, which may differ from ours (PreVote).
      if (m.term === 0n) throw new ErrInvariant(`term should be set when sending ${MessageType[t]}`);
    } else if (t !== MessageType.MsgPropose && t !== MessageType.MsgReadIndex) {
      // Forwarded proposals/reads keep term 0 so the leader treats them as local requests.
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  // ---- ticks -------------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) leader.tickHeartbeat(this);
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ msgType: MessageType.MsgHup, from: this.id }));
    }
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
  }

  /** A node may campaign only while it is a member and has no snapshot left to install. */
  promotable(): boolean {
    return this.prs.has(this.id) && !this.raftLog.hasPendingSnapshot();
  }

  // ---- state transitions -------------------------------------------------------------------

  private reset(term: bigint): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = 0n;
    }
    this.lead = 0n;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = 0n;
    this.votes = new Map();
    const last = this.raftLog.lastIndex();
    // Our own match is what is durable: entries still being persisted count once persisted.
    const durable = minBig(last, this.raftLog.stabled);
    for (const id of [...this.prs.keys()]) {
      this.prs.set(id, new Progress(last + 1n, id === this.id ? durable : 0n, this.maxInflight));
    }
    this.pendingConfIndex = 0n;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  becomeFollower(term: bigint, lead: bigint): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger?.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new ErrInvariant("invalid transition [leader -> candidate]");
    this.reset(this.term + 1n);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger?.info(`${this.id} became candidate at term ${this.term}`);
  }

  /** PreVote: campaign without bumping the term or voting, so a lost node cannot disrupt. */
  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new ErrInvariant("invalid transition [leader -> pre-candidate]");
    this.votes = new Map();
    this.lead = 0n;
    this.state = StateType.PreCandidate;
    this.logger?.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new ErrInvariant("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    this.logger?.info(`${this.id} became leader at term ${this.term}`);
    this.prs.get(this.id)?.becomeReplicate();
    // Entries after this point may contain an unapplied conf change; refuse new ones until
    // everything up to here is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry lets the new leader commit (and so learn the commit index) in its term.
    leader.appendEntries(this, [{ entryType: EntryType.EntryNormal, term: 0n, index: 0n, data: Buffer.alloc(0) }]);
  }

  // ---- elections ---------------------------------------------------------------------------

  hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) {
      this.logger?.info(`${this.id} cannot campaign at term ${this.term}: a committed conf change is not applied yet`);
      return;
    }
    this.logger?.info(`${this.id} is starting a new election at term ${this.term}`);
    candidate.campaign(this, t);
  }

  /** A committed but unapplied conf change may change who votes; wait until it is applied. */
  private hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    if (log.applied >= log.committed) return false;
    const lo = log.applied + 1n > log.firstIndex() ? log.applied + 1n : log.firstIndex();
    for (const e of log.slice(lo, log.committed + 1n)) {
      if (e.entryType === EntryType.EntryConfChange) return true;
    }
    return false;
  }

  // ---- step --------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0n) {
      // local message
    } else if (m.term > this.term) {
      const isVote = m.msgType === MessageType.MsgRequestVote || m.msgType === MessageType.MsgRequestPreVote;
      if (isVote) {
        const force = m.context.equals(CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== 0n && this.electionElapsed < this.electionTimeout;
        // We heard from a live leader recently: a vote request is from a disruptive node.
        if (!force && inLease) {
          this.logger?.info(
            `${this.id} [term: ${this.term}] ignored ${MessageType[m.msgType]} from ${m.from} [term: ${m.term}]: ` +
              `lease of leader ${this.lead} is not expired (${this.electionTimeout - this.electionElapsed} ticks left)`,
          );
          return;
        }
      }
      this.logger?.info(
        `${this.id} [term: ${this.term}] received a ${MessageType[m.msgType]} message with higher term from ${m.from} [term: ${m.term}]`,
      );
      if (m.msgType === MessageType.MsgRequestPreVote) {
        // Never change term in response to a PreVote.
      } else if (m.msgType === MessageType.MsgRequestPreVoteResponse && !m.reject) {
        // The term in a granted pre-vote is the one we will campaign at; bump it when we win.
      } else if (
        m.msgType === MessageType.MsgAppend ||
        m.msgType === MessageType.MsgHeartbeat ||
        m.msgType === MessageType.MsgSnapshot
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, 0n);
      }
    } else if (m.term < this.term) {
      if (m.msgType === MessageType.MsgHeartbeat || m.msgType === MessageType.MsgAppend) {
        // A stale leader: tell it our term so it steps down (with CheckQuorum/PreVote nothing
        // else would, and the partitioned node could never rejoin).
        this.send(newMessage({ msgType: MessageType.MsgAppendResponse, to: m.from }));
      } else if (m.msgType === MessageType.MsgRequestPreVote) {
        this.send(
          newMessage({ msgType: MessageType.MsgRequestPreVoteResponse, to: m.from, term: this.term, reject: true }),
        );
      }
      return;
    }

    switch (m.msgType) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.MsgRequestVote:
      case MessageType.MsgRequestPreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        leader.stepLeader(this, m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        candidate.stepCandidate(this, m);
        return;
      case StateType.Follower:
        follower.stepFollower(this, m);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === 0n && this.lead === 0n) ||
      (m.msgType === MessageType.MsgRequestPreVote && m.term > this.term);
    const respType = voteRespType(m.msgType);
    const granted = canVote && this.raftLog.isUpToDate(m.index, m.logTerm);
    this.logger?.info(
      `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] ` +
        `${granted ? "cast" : "rejected"} ${MessageType[m.msgType]} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
    );
    if (granted) {
      this.send(newMessage({ msgType: respType, to: m.from, term: m.term }));
      if (m.msgType === MessageType.MsgRequestVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(newMessage({ msgType: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  // ---- membership --------------------------------------------------------------------------

  addNode(id: bigint): void {
    if (this.prs.has(id)) return; // duplicate adds are harmless
    const pr = new Progress(this.raftLog.lastIndex() + 1n, 0n, this.maxInflight);
    // A node just added gets one check-quorum round of grace before it counts as inactive.
    pr.recentActive = true;
    this.prs.set(id, pr);
    this.logger?.info(`${this.id} added ${id} to the configuration`);
  }

  removeNode(id: bigint): void {
    if (!this.prs.delete(id)) return;
    this.logger?.info(`${this.id} removed ${id} from the configuration`);
    if (this.state !== StateType.Leader) return;
    if (id === this.id && this.stepDownOnRemoval) {
      // A leader that is no longer a member must not keep leading; the others elect a new one.
      this.becomeFollower(this.term, 0n);
      return;
    }
    if (this.leadTransferee === id) this.leadTransferee = 0n;
    // A smaller quorum may already hold pending entries.
    if (this.prs.size > 0 && leader.maybeCommit(this)) {
      leader.releasePendingReadIndexMessages(this);
      leader.bcastAppend(this);
    }
  }
}
