/**
 * The admin commands a leader acts on at once rather than through the log: a leader transfer,
 * and the proposal of a membership change (a conf change entry, answered when it applies).
 */
import type { RawNode } from "../../raft/index.js";
import { ConfChange, ConfChangeType } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import { AdminCmdType, RaftCmdRequest, RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { errorResponse, regionErrors } from "./errors.js";
import type { PeerLease } from "./lease-reads.js";
import type { Proposals } from "./proposals.js";

/** What the admin commands need of their peer. */
export interface AdminPeer {
  readonly raw: RawNode;
  readonly lease: PeerLease | undefined;
  readonly meta: PeerMeta;
  readonly region: Region;
  readonly term: bigint;
  readonly proposals: Proposals;
  remember(p: PeerMeta | undefined): void;
  wake(): void;
}

type Done = (resp: RaftCmdResponse) => void;

export function transferLeader(peer: AdminPeer, req: RaftCmdRequest, done: Done): void {
  peer.lease?.drop("transfer");
  peer.raw.transferLeader(req.adminRequest!.transferLeader!.peer!.id);
  peer.wake();
  done(
    RaftCmdResponse.fromPartial({
      header: {},
      adminResponse: { cmdType: AdminCmdType.TransferLeader, transferLeader: {} },
    }),
  );
}

export function proposeConfChange(peer: AdminPeer, req: RaftCmdRequest, done: Done): void {
  const change = req.adminRequest!.changePeer!;
  peer.lease?.drop("conf-change");
  if (change.changeType === ConfChangeType.RemoveNode && change.peer?.id === peer.meta.id) {
    // A leader that removes itself may destroy itself before any follower learns the
    // removal committed; with two peers that leaves one voter that can never win. Hand
    // leadership over first; the caller retries on the new leader.
    const target = peer.region.peers.find((p) => p.id !== peer.meta.id);
    if (target) peer.raw.transferLeader(target.id); // the conf-change drop above ended the lease
    peer.wake();
    return done(errorResponse(regionErrors.notLeader(peer.region.id, target), peer.term));
  }
  peer.remember(change.peer);
  const cc = ConfChange.fromPartial({
    changeType: change.changeType,
    nodeId: change.peer!.id,
    context: Buffer.from(RaftCmdRequest.encode(req).finish()),
  });
  const at = peer.raw.proposeConfChange(cc);
  peer.proposals.inTheLog(at.index, at.term, [{ done }]);
  peer.wake();
}
