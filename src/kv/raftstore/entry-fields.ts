/**
 * Questions the store loop asks of every entry of a turn, answered from the entry's wire bytes
 * (raft_cmdpb.RaftCmdRequest) without decoding it: most turns hold nothing special. What the walk
 * cannot read (bytes cut short, a group, an over-long varint) answers "maybe" (true): the caller
 * then decodes the entry, and the decoder, which apply uses too, decides.
 */
import type { Entry } from "../../raft/eraftpb.js";
import { EntryType } from "../../raft/eraftpb.js";

const REQUESTS_FIELD = 2;

/** A varint at `pos`: its value (below 2^53: lengths and tags) and the position after it; undefined if cut short. */
function varint(buf: Uint8Array, pos: number): [number, number] | undefined {
  let value = 0;
  for (let shift = 1; pos < buf.length && shift < 2 ** 56; shift *= 128) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, pos];
  }
  return undefined;
}

/** Position after the field whose tag has wire type `wireType` and ends at `pos`; -1 for what it cannot skip. */
function skipField(buf: Uint8Array, pos: number, wireType: number): number {
  switch (wireType) {
    case 0:
      return varint(buf, pos)?.[1] ?? -1;
    case 1:
      return pos + 8;
    case 2: {
      const len = varint(buf, pos);
      return len ? len[1] + len[0] : -1;
    }
    case 5:
      return pos + 4;
    default:
      return -1;
  }
}

/** Whether the message in buf[pos, end) has a field numbered `field` at its top level (true: maybe, when it cannot tell). */
function hasField(buf: Uint8Array, pos: number, end: number, field: number): boolean {
  while (pos < end) {
    const tag = varint(buf, pos);
    if (!tag) return true;
    if (Math.floor(tag[0] / 8) === field) return true;
    pos = skipField(buf, tag[1], tag[0] & 7);
    if (pos < 0) return true;
  }
  return false;
}

/**
 * Whether any Request of a normal entry's RaftCmdRequest has the field numbered `field` (a
 * conditional write, a delete range) at its top level, by walking the wire tags: no decode, no
 * allocation, and a key or value that holds the same bytes never matches. Bytes the walk cannot
 * read answer true (maybe): the caller decodes, and apply refuses what does not decode.
 */
export function holdsRequestField(entry: Entry, field: number): boolean {
  if (entry.entryType !== EntryType.EntryNormal || entry.data.length === 0) return false;
  const buf = entry.data;
  let pos = 0;
  while (pos < buf.length) {
    const tag = varint(buf, pos);
    if (!tag) return true;
    const wireType = tag[0] & 7;
    if (Math.floor(tag[0] / 8) === REQUESTS_FIELD && wireType === 2) {
      const len = varint(buf, tag[1]);
      if (!len) return true;
      if (hasField(buf, len[1], Math.min(buf.length, len[1] + len[0]), field)) return true;
      pos = len[1] + len[0];
    } else {
      pos = skipField(buf, tag[1], wireType);
      if (pos < 0) return true;
    }
  }
  return false;
}
