import type * as grpc from "@grpc/grpc-js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { TinyKvClient } from "../../proto/tinykvpb.js";

export interface QueuedMessage {
  msg: RaftMessage;
  /** Upper bound of its encoded size. */
  size: number;
}

/** Everything about one destination store. */
export interface Destination {
  readonly storeId: bigint;
  addr: string | undefined;
  client: TinyKvClient | undefined;
  stream: grpc.ClientWritableStream<RaftMessage> | undefined;
  /** Settles when the current stream's callback fired. */
  streamDone: Promise<void>;
  streamStartedAt: number;
  connecting: boolean;
  blocked: boolean;
  queue: QueuedMessage[];
  queuedBytes: number;
  /** Bytes written on the current stream whose write has not completed. */
  inFlightBytes: number;
  lastOversizeWarning: number;
  /** One message per (region, to-peer) written on the current stream: reported unreachable if it breaks. */
  inFlight: Map<string, RaftMessage>;
  backoffMs: number;
  /** Until then, sends are dropped (reported unreachable) instead of reconnecting. */
  retryAt: number;
  overflowing: boolean;
  snapshotsActive: number;
  snapshotWaiters: Array<() => void>;
}

export function newDestination(storeId: bigint, backoffMs: number): Destination {
  return {
    storeId, addr: undefined, client: undefined, stream: undefined, streamDone: Promise.resolve(),
    streamStartedAt: 0, connecting: false, blocked: false, queue: [], queuedBytes: 0, inFlightBytes: 0, lastOversizeWarning: 0,
    inFlight: new Map(), backoffMs, retryAt: 0, overflowing: false, snapshotsActive: 0, snapshotWaiters: [],
  };
}
