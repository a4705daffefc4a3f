import type { Entry, Message, Snapshot } from "../../proto/eraftpb.js";
import type { Peer, RegionEpoch } from "../../proto/metapb.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";

/**
 * A deep copy of a raft message with nothing shared with the sender: what the receiver of an
 * encode and decode gets, without paying for the bytes' round trip. The in-memory network uses
 * it where a run sends hundreds of thousands of messages (the simulator); the wire copy stays
 * the default elsewhere, since it also proves every message encodes. Spreads first, so a field
 * added to the protos later is carried (shallowly) rather than dropped.
 */
/** Shared by every copy of an empty field: a zero-length buffer has no bytes to write into. */
const EMPTY = Buffer.alloc(0);

/** A copy of `b` (most messages' keys, contexts and heartbeats' fields are empty: those cost nothing). */
function copyBytes(b: Uint8Array): Buffer {
  return b.length === 0 ? EMPTY : Buffer.from(b);
}

export function copyRaftMessage(msg: RaftMessage): RaftMessage {
  return {
    ...msg,
    fromPeer: msg.fromPeer && copyPeer(msg.fromPeer),
    toPeer: msg.toPeer && copyPeer(msg.toPeer),
    message: msg.message && copyMessage(msg.message),
    regionEpoch: msg.regionEpoch && copyEpoch(msg.regionEpoch),
    startKey: copyBytes(msg.startKey),
    endKey: copyBytes(msg.endKey),
  };
}

function copyPeer(p: Peer): Peer {
  return { ...p };
}

function copyEpoch(e: RegionEpoch): RegionEpoch {
  return { ...e };
}

function copyMessage(m: Message): Message {
  return {
    ...m,
    entries: m.entries.map(copyEntry),
    snapshot: m.snapshot && copySnapshot(m.snapshot),
    context: copyBytes(m.context),
  };
}

function copyEntry(e: Entry): Entry {
  return { ...e, data: copyBytes(e.data) };
}

function copySnapshot(s: Snapshot): Snapshot {
  const meta = s.metadata;
  return {
    ...s,
    data: copyBytes(s.data),
    metadata: meta && {
      ...meta,
      confState: meta.confState && { ...meta.confState, nodes: [...meta.confState.nodes] },
    },
  };
}
