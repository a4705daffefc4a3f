// Types shared by the raft files (kept apart from raft.ts so the files that implement parts of
// Raft can import them without an import cycle at load time).
import type { RaftLogStorage } from "./storage.js";

export interface RaftConfig {
  id: bigint;
  /** Initial membership, used only when the storage's ConfState is empty. */
  peers?: bigint[];
  electionTick: number;
  heartbeatTick: number;
  storage: RaftLogStorage;
  /** Last applied index on restart. */
  applied?: bigint;
  /** Bytes of entries per MsgAppend (default 1 MiB). */
  maxSizePerMsg?: number;
  /** Pipelined appends in flight per follower (default 256). */
  maxInflightMsgs?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /**
   * A leader that applies its own removal steps down at once (default). With false, as etcd's
   * default, it keeps leading the remaining members (heartbeats carry the commit index that
   * includes its removal) until the host retires it; it accepts no proposals meanwhile.
   */
  stepDownOnRemoval?: boolean;
  /**
   * Off (etcd's behaviour, the default): a leader whose commit index advances sends it at once to
   * every follower, in an append without entries if it has none to send. On: a follower that
   * already holds every entry learns the new commit with the next append or heartbeat (which
   * carries it), and commitBroadcast() sends it at once when the host needs the followers to
   * apply soon. Commit is not persisted state and nothing waits for a follower to learn it; at a
   * low write rate this halves the messages of a write (no empty append, no answer to it), and
   * the followers do not wake while the leader applies and answers.
   */
  lazyCommitBroadcast?: boolean;
  /** Seeded RNG returning [0,1); defaults to a PRNG seeded by the node id. */
  random?: () => number;
  /** Hears about elections, role changes and membership changes, one line each (off by default). */
  logger?: RaftLogger;
}

/** A trace of what a Raft decided and why; the interaction tests print it between the Readys. */
export interface RaftLogger {
  info(line: string): void;
}

export enum StateType {
  Follower,
  Candidate,
  Leader,
  PreCandidate,
}

export interface SoftState {
  lead: bigint;
  raftState: StateType;
}

export interface ReadState {
  index: bigint;
  requestCtx: Buffer;
}

export enum CampaignType {
  PreElection = "PreElection",
  Election = "Election",
  Transfer = "Transfer",
}

/** Context of vote requests from a MsgTimeoutNow campaign: voters bypass their leader lease. */
export const CAMPAIGN_TRANSFER = Buffer.from("CampaignTransfer");
