import type { RaftMessage, SnapshotChunk } from "../../proto/raft_serverpb.js";

/**
 * What a store receives from other stores. The store implements it; transports deliver to it.
 * (The gRPC service in src/kv/server calls the same two methods for the Raft and Snapshot rpcs.)
 */
export interface RaftMessageSink {
  onRaftMessage(msg: RaftMessage): void;
  /** One snapshot stream: the first chunk carries `message` (a MsgSnapshot), later chunks carry `data`. */
  onSnapshot(chunks: AsyncIterable<SnapshotChunk>): Promise<void>;
}

/** Maps a store id to its gRPC address (static in tests; the scheduler's GetStore in a cluster). */
export interface StoreResolver {
  resolve(storeId: bigint): Promise<string>;
}

/** Where the bytes of a snapshot come from when a MsgSnapshot is sent: the sender's snapshot file. */
export type SnapshotSource = (msg: RaftMessage) => AsyncIterable<Buffer>;

export interface TransportEvents {
  /** A message could not be delivered (connection down, filtered): raft should treat the peer as unreachable. */
  onUnreachable?(msg: RaftMessage): void;
  /** A snapshot stream finished (ok) or failed: raft's reportSnapshot. */
  onSnapshotStatus?(msg: RaftMessage, ok: boolean): void;
}

/**
 * Sends raft messages to other stores. `send` never blocks and never throws for a remote
 * failure: messages are queued per destination store and flushed in batches; lost messages
 * are normal for Raft, which retries.
 */
export interface RaftTransport {
  send(msg: RaftMessage): void;
  /** Flushes queued messages now (the store loop calls it once per turn). */
  flush(): void;
  close(): Promise<void>;
  /** flush() hands its bytes to the kernel before returning (else they leave when the event loop comes round). */
  readonly writesOnFlush?: boolean;
}
