/**
 * Who a peer can address: its region's peers, plus peers it heard from that its region meta does
 * not list yet (a peer added by a conf change it has not applied), and the store-to-store
 * envelope a raft message travels in.
 */
import type { Message } from "../../raft/eraftpb.js";
import type { Peer as PeerMeta, Region } from "../../proto/metapb.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import { isInitialMessage } from "./peer-msg.js";

export class PeerDirectory {
  /** Peers seen in messages but not (yet) in the region meta, for addressing replies. */
  private readonly seen = new Map<bigint, PeerMeta>();

  constructor(
    private readonly self: PeerMeta,
    private readonly region: () => Region,
  ) {}

  peerById(id: bigint): PeerMeta | undefined {
    return this.region().peers.find((p) => p.id === id) ?? this.seen.get(id);
  }

  remember(p: PeerMeta | undefined): void {
    if (p && p.id !== 0n && !this.region().peers.some((x) => x.id === p.id)) this.seen.set(p.id, { ...p });
  }

  /** Wraps a raft message in the store-to-store envelope; undefined when the target is unknown. */
  envelope(msg: Message): RaftMessage | undefined {
    const to = this.peerById(msg.to);
    if (!to) return undefined;
    const region = this.region();
    const initial = isInitialMessage(msg);
    return {
      regionId: region.id,
      fromPeer: this.self,
      toPeer: to,
      message: msg,
      regionEpoch: region.regionEpoch,
      isTombstone: false,
      startKey: initial ? region.startKey : Buffer.alloc(0),
      endKey: initial ? region.endKey : Buffer.alloc(0),
    };
  }
}
