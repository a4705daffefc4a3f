import { MessageType } from "../../raft/index.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import { RaftSnapshotData } from "../../proto/raft_serverpb.js";

/**
 * The door for raft messages from other stores: everything from the network is untrusted, so an
 * envelope is checked before any of it is used. A message that fails is dropped (never a crash,
 * never a stopped store); the reason names what was wrong.
 */
export function invalidRaftMessage(msg: RaftMessage, storeId: bigint): string | undefined {
  if (msg.regionId === 0n) return "region_id is 0";
  if (!msg.toPeer || msg.toPeer.id === 0n) return "to_peer is missing or has id 0";
  if (msg.toPeer.storeId !== storeId) return `to_peer is on store ${msg.toPeer.storeId}, this is store ${storeId}`;
  if (!msg.fromPeer || msg.fromPeer.id === 0n || msg.fromPeer.storeId === 0n) return "from_peer is missing or has id 0";
  if (msg.fromPeer.id === msg.toPeer.id) return "from_peer and to_peer are the same peer";
  if (!msg.regionEpoch) return "region_epoch is missing";
  const m = msg.message;
  if (!m) return "the raft message is missing";
  if (MessageType[m.msgType] === undefined) return `unknown raft message type ${m.msgType}`;
  if (m.to !== msg.toPeer.id || m.from !== msg.fromPeer.id)
    return `raft message ${m.from}->${m.to} does not match envelope ${msg.fromPeer.id}->${msg.toPeer.id}`;
  if (m.msgType === MessageType.MsgSnapshot) return invalidSnapshot(msg);
  return undefined;
}

function invalidSnapshot(msg: RaftMessage): string | undefined {
  const snap = msg.message!.snapshot;
  if (!snap?.metadata || snap.metadata.index === 0n) return "snapshot message without metadata";
  let data: RaftSnapshotData;
  try {
    data = RaftSnapshotData.decode(snap.data);
  } catch (err) {
    return `snapshot data does not decode: ${(err as Error).message}`;
  }
  const region = data.region;
  if (!region || region.id !== msg.regionId) return "snapshot data names another region (or none)";
  if (!region.regionEpoch || region.peers.length === 0) return "snapshot region has no epoch or no peers";
  return undefined;
}

/** One warning per reason at most every `intervalMs`, with how many were dropped meanwhile. */
export class DropLog {
  private readonly last = new Map<string, { at: number; dropped: number }>();

  constructor(
    private readonly warn: (fields: Record<string, unknown>, line: string) => void,
    private readonly intervalMs = 10_000,
  ) {}

  drop(reason: string, fields: Record<string, unknown>, now: number): void {
    // Reasons embed ids and decode errors: throttle by their shape, in a map that stays small.
    const shape = reason.replace(/\d+/g, "#").slice(0, 48);
    if (!this.last.has(shape) && this.last.size >= 64) this.last.clear();
    const seen = this.last.get(shape);
    if (seen && now - seen.at < this.intervalMs) {
      seen.dropped++;
      return;
    }
    this.last.set(shape, { at: now, dropped: 0 });
    this.warn({ ...fields, reason, dropped_since_last: seen?.dropped ?? 0 }, "dropped an invalid raft message");
  }
}
