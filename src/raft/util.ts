// Small helpers shared by the raft files: message construction, size limits, message classes.
import type { Entry, HardState, Message } from "./eraftpb.js";
import { EntryType, MessageType } from "./eraftpb.js";

const EMPTY = Buffer.alloc(0);

/** Builds a Message with every field defaulted (cheaper than Message.create's deep copy). */
export function newMessage(m: Partial<Message> & { msgType: MessageType }): Message {
  return {
    msgType: m.msgType,
    to: m.to ?? 0n,
    from: m.from ?? 0n,
    term: m.term ?? 0n,
    logTerm: m.logTerm ?? 0n,
    index: m.index ?? 0n,
    entries: m.entries ?? [],
    commit: m.commit ?? 0n,
    snapshot: m.snapshot,
    reject: m.reject ?? false,
    context: m.context ?? EMPTY,
    rejectHint: m.rejectHint ?? 0n,
  };
}

export function newEntry(e: Partial<Entry>): Entry {
  return {
    entryType: e.entryType ?? EntryType.EntryNormal,
    term: e.term ?? 0n,
    index: e.index ?? 0n,
    data: e.data ?? EMPTY,
  };
}

/** Approximate encoded size; only used to bound message and batch sizes. */
export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

/** Keeps a prefix of ents whose total size is within maxSize, but always at least one entry. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgPropose ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapshotStatus
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppendResponse ||
    t === MessageType.MsgRequestVoteResponse ||
    t === MessageType.MsgHeartbeatResponse ||
    t === MessageType.MsgRequestPreVoteResponse ||
    t === MessageType.MsgReadIndexResponse
  );
}

export function voteRespType(t: MessageType): MessageType {
  return t === MessageType.MsgRequestVote ? MessageType.MsgRequestVoteResponse : MessageType.MsgRequestPreVoteResponse;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isEmptyHardState(h: HardState): boolean {
  return h.term === 0n && h.vote === 0n && h.commit === 0n;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
