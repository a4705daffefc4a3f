import { Entry, MessageType } from "../../proto/eraftpb.js";
import { RaftMessage } from "../../proto/raft_serverpb.js";

/** gRPC's per-message ceiling on store-to-store channels (send and receive). */
export const MAX_RAFT_MESSAGE_BYTES = 16 * 1024 * 1024;

// Upper bounds of protobuf framing: an entry's type, term, index and data tag/length plus its
// own tag/length in the message; the envelope's ids, epoch, peers and message scalars.
const ENTRY_OVERHEAD_BYTES = 40;
const ENVELOPE_OVERHEAD_BYTES = 512;

/**
 * An upper bound of a message's encoded size, computed without encoding it (this runs for
 * every message sent). Snapshot data never travels in a stream message (it has its own rpc).
 */
export function raftMessageSizeBound(msg: RaftMessage): number {
  let size = ENVELOPE_OVERHEAD_BYTES + msg.startKey.length + msg.endKey.length;
  const m = msg.message;
  if (m) {
    size += m.context.length;
    for (const e of m.entries) size += e.data.length + ENTRY_OVERHEAD_BYTES;
    if (m.snapshot) size += m.snapshot.data.length + ENVELOPE_OVERHEAD_BYTES;
  }
  return size;
}

function encodedSize(msg: RaftMessage): number {
  return RaftMessage.encode(msg).finish().length;
}

function entrySize(e: Entry): number {
  return Entry.encode(e).finish().length + ENTRY_OVERHEAD_BYTES;
}

/** What fits in gRPC messages of at most `limit` bytes: parts to send, and whether something had to be dropped. */
export interface FittedMessage {
  parts: Array<{ msg: RaftMessage; size: number }>;
  /** Part of the message could not fit even alone (a single entry over the limit). */
  dropped: boolean;
  /** Encoded size of the whole message, when it had to be measured. */
  size: number;
}

/**
 * Makes a message fit the gRPC limit: as is when it does; an append carrying several entries
 * is split into consecutive appends (each one continues after the previous part's last entry,
 * so the follower accepts them in order as one); whatever cannot fit even alone is dropped:
 * writing it would make gRPC fail the whole stream, and with it every region's traffic.
 */
export function fitRaftMessage(msg: RaftMessage, limit: number): FittedMessage {
  const bound = raftMessageSizeBound(msg);
  if (bound <= limit) return { parts: [{ msg, size: bound }], dropped: false, size: bound };
  const size = encodedSize(msg);
  if (size <= limit) return { parts: [{ msg, size }], dropped: false, size };
  const m = msg.message;
  if (!m || m.msgType !== MessageType.MsgAppend || m.entries.length < 2) return { parts: [], dropped: true, size };

  const budget = limit - encodedSize({ ...msg, message: { ...m, entries: [] } }) - ENVELOPE_OVERHEAD_BYTES;
  const parts: FittedMessage["parts"] = [];
  let prevIndex = m.index;
  let prevTerm = m.logTerm;
  let chunk: Entry[] = [];
  let chunkBytes = 0;
  const emit = () => {
    if (chunk.length === 0) return;
    parts.push({
      msg: { ...msg, message: { ...m, index: prevIndex, logTerm: prevTerm, entries: chunk } },
      size: chunkBytes + (limit - budget),
    });
    const last = chunk[chunk.length - 1]!;
    prevIndex = last.index;
    prevTerm = last.term;
    chunk = [];
    chunkBytes = 0;
  };
  for (const e of m.entries) {
    const bytes = entrySize(e);
    if (bytes > budget) {
      emit();
      return { parts, dropped: true, size };
    }
    if (chunkBytes + bytes > budget) emit();
    chunk.push(e);
    chunkBytes += bytes;
  }
  emit();
  return { parts, dropped: false, size };
}
