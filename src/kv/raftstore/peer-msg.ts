import type { Message, SnapshotStatus } from "../../raft/index.js";
import { MessageType } from "../../raft/index.js";
import type { Entry } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta } from "../../proto/metapb.js";
import type { RaftCmdRequest, RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { AdminCmdType } from "../../proto/raft_cmdpb.js";
import type { ReadOutcome } from "./reads.js";

/**
 * Everything a peer receives, through its one door (`Peer.handle`), as TiKV's peer FSM takes
 * its messages. The store's checks come first (inbox.ts for raft messages, `Store.route` for
 * requests); what arrives here is addressed to this peer.
 */
export type PeerMsg =
  /** A raft message from another store's peer that passed the inbox's checks. */
  | { type: "raftMessage"; from: PeerMeta; message: Message }
  /** A write or admin command; answered by its outcome. */
  | { type: "command"; req: RaftCmdRequest; done(resp: RaftCmdResponse): void }
  /** A linearizable read; answered once apply reaches its read index (or at `deadline`). */
  | { type: "read"; req: RaftCmdRequest; deadline: number; replica?: boolean; done(outcome: ReadOutcome): void }
  /** One raft tick of the store's clock. */
  | { type: "tick"; now: number }
  /** The transport finished (or failed) sending a snapshot to a peer. */
  | { type: "snapshotStatus"; toPeerId: bigint; status: SnapshotStatus }
  /** The transport could not reach a peer. */
  | { type: "unreachable"; toPeerId: bigint }
  /** Older log entries a follower needs, read back from the raft engine (log-fetch.ts). */
  | { type: "entriesFetched"; lo: bigint; entries: Entry[] }
  /** Campaign at once (the new region of a split whose parent leads here). */
  | { type: "campaign" }
  /** The peer leaves this store: it answers everything waiting on it and takes nothing more. */
  | { type: "destroy" };

/** How a request is carried out, decided once by `inspectRequest` (TiKV's RequestPolicy). */
export type RequestPolicy = "readIndex" | "proposeNormal" | "proposeConfChange" | "transferLeader";

/**
 * A message that may create a peer on a store that has none for its region: a (pre-)vote, or the
 * first heartbeat of a new leader (commit 0). Such messages carry the region's range.
 */
export function isInitialMessage(m: Message): boolean {
  return (
    m.msgType === MessageType.MsgRequestVote ||
    m.msgType === MessageType.MsgRequestPreVote ||
    (m.msgType === MessageType.MsgHeartbeat && m.commit === 0n)
  );
}

/** How a request is carried out: reads by ReadIndex, admin commands by their kind, the rest as normal entries. */
export function inspectRequest(msg: Extract<PeerMsg, { type: "command" | "read" }>): RequestPolicy {
  if (msg.type === "read") return "readIndex";
  const admin = msg.req.adminRequest;
  if (admin?.cmdType === AdminCmdType.TransferLeader) return "transferLeader";
  if (admin?.cmdType === AdminCmdType.ChangePeer) return "proposeConfChange";
  return "proposeNormal";
}
