import type * as grpc from "@grpc/grpc-js";
import { MessageType } from "../../proto/eraftpb.js";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { hopTrace } from "../../util/hop-trace.js";
import { traceMessage } from "./trace-message.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcChannelCredentials } from "../../util/tls.js";
import type { LinkFailure, QueuedMessage, StreamLink } from "./grpc-destination.js";
import { Destination, ReconnectBackoff } from "./grpc-destination.js";
import type { RaftDialer, RaftWriteStream } from "./raft-link.js";
import { grpcDialer, tcpDialer } from "./raft-link.js";
import type { TransportError } from "./errors.js";
import { InvalidRaftMessageError, StoreNotFoundError, DestinationUnreachableError } from "./errors.js";
import { SnapshotSender } from "./grpc-snapshot-sender.js";
import { fitRaftMessage, MAX_RAFT_MESSAGE_BYTES } from "./message-size.js";
import { SNAPSHOT_CHUNK_BYTES } from "./snapshot-chunks.js";
import type { RaftTransport, SnapshotSource, StoreResolver, TransportEvents } from "./transport.js";

/**
 * Store-to-store channels: own connection (never shared with client traffic to the same address),
 * keepalive as TinyKV's raft client (ping every 3 s, the server permits ≥ 2 s), big messages.
 */
export const RAFT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.enable_channelz": 0,
  "grpc.keepalive_time_ms": 3000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.max_send_message_length": MAX_RAFT_MESSAGE_BYTES,
  "grpc.max_receive_message_length": MAX_RAFT_MESSAGE_BYTES,
};

export interface GrpcTransportOptions {
  /** This store (for logs). */
  storeId: bigint;
  resolver: StoreResolver;
  snapshotSource: SnapshotSource;
  events?: TransportEvents;
  log?: Logger;
  /** Time, timers, deferral and the backoff's jitter (default: the real runtime). */
  runtime?: Runtime;
  /** First reconnect backoff after a stream failure (default 100 ms); doubles, jittered, up to the max. */
  reconnectBackoffMs?: number;
  /** Backoff cap (default 3000 ms). */
  maxReconnectBackoffMs?: number;
  /** Messages queued per destination while connecting or under backpressure (default 8192); the oldest are dropped beyond. */
  maxQueuedMessages?: number;
  /** Bytes of messages queued per destination (default 64 MiB); the oldest are dropped beyond. */
  maxQueuedBytes?: number;
  /** Bytes written to a destination's stream that gRPC has not sent yet (default 32 MiB); more wait in the queue. */
  maxInFlightBytes?: number;
  /** One stream message's limit (default: gRPC's 16 MiB); bigger appends are split, what cannot fit is dropped. */
  maxMessageBytes?: number;
  /** Concurrent snapshot streams per destination (default 2); up to 8 more wait, the rest fail at once. */
  maxConcurrentSnapshots?: number;
  /** Snapshot data chunk size (default 1 MiB). */
  snapshotChunkBytes?: number;
  /** A snapshot stream that takes longer fails (default 10 min). */
  snapshotTimeoutMs?: number;
  /** Address resolution that takes longer counts as a failure (default 5000 ms). */
  resolveTimeoutMs?: number;
  /** Mutual TLS to the other stores (this store's certificate, verified against the CA); default plaintext. */
  tls?: TlsConfig;
  /**
   * Raft messages go over a plain TCP connection to the store's port (tcp-frames.ts) instead of a
   * gRPC stream: no HTTP/2 framing, written as flush() runs. Ignored with TLS. Snapshots stay on gRPC.
   */
  raftOverTcp?: boolean;
}

/** Raft messages buffered in the grpc-js stream before we wait for 'drain' (its own mark is 16). */
const RAFT_WRITE_WINDOW = 256;
const CLOSE_GRACE_MS = 1000;
const OVERSIZE_WARNING_INTERVAL_MS = 10_000;

type RaftStream = RaftWriteStream;
type LinkClient = { close(): void };
type RaftDestination = Destination<RaftStream, LinkClient>;

/**
 * RaftTransport over tinykvpb.TinyKv's client-streaming `Raft` rpc: one long-lived stream per
 * destination store on its own channel, batched writes on flush, bounded queues, lazy reconnect
 * with capped jittered exponential backoff. MsgSnapshot goes on its own `Snapshot` call.
 * Events are never called from inside send()/flush(), and never after close().
 */
export class GrpcTransport implements RaftTransport {
  /** Counters for tests and metrics. */
  readonly stats = { written: 0, dropped: 0, streamsOpened: 0, streamFailures: 0, backpressureWaits: 0 };
  private readonly dests = new Map<bigint, RaftDestination>();
  private readonly snapshots: SnapshotSender;
  private readonly log: Logger;
  private readonly runtime: Runtime;
  private readonly events: TransportEvents;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number;
  private readonly maxInFlightBytes: number;
  private readonly maxMessageBytes: number;
  /** Raft over TCP when on; gRPC streams otherwise, and for a destination that refused TCP. */
  private readonly tcpDial: RaftDialer | undefined;
  private readonly grpcDial: RaftDialer;
  /** flush() hands what it writes to the kernel before it returns (raft over TCP; gRPC waits for the event loop). */
  readonly writesOnFlush: boolean;
  /** A deferred flush is pending (flush() and close() cancel it by clearing this). */
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.log = (opts.log ?? silentLogger).child({ store_id: opts.storeId, component: "transport" });
    this.runtime = opts.runtime ?? realRuntime;
    this.events = opts.events ?? {};
    this.initialBackoffMs = opts.reconnectBackoffMs ?? 100;
    this.maxBackoffMs = Math.max(opts.maxReconnectBackoffMs ?? 3000, this.initialBackoffMs);
    this.maxQueued = opts.maxQueuedMessages ?? 8192;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.maxInFlightBytes = opts.maxInFlightBytes ?? 32 * 1024 * 1024;
    this.maxMessageBytes = Math.min(opts.maxMessageBytes ?? MAX_RAFT_MESSAGE_BYTES, MAX_RAFT_MESSAGE_BYTES);
    this.writesOnFlush = (opts.raftOverTcp ?? false) && !opts.tls;
    this.tcpDial = this.writesOnFlush ? tcpDialer(this.runtime) : undefined;
    this.grpcDial = grpcDialer(grpcChannelCredentials(opts.tls), RAFT_CHANNEL_OPTIONS);
    this.snapshots = new SnapshotSender({
      log: this.log,
      runtime: this.runtime,
      source: opts.snapshotSource,
      tls: opts.tls,
      channelOptions: RAFT_CHANNEL_OPTIONS,
      chunkBytes: opts.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES,
      timeoutMs: opts.snapshotTimeoutMs ?? 10 * 60_000,
      maxConcurrent: opts.maxConcurrentSnapshots ?? 2,
      resolve: (storeId) => this.resolve(storeId),
      onStatus: (msg, ok) => {
        if (!this.closed) this.events.onSnapshotStatus?.(msg, ok);
      },
    });
  }

  send(msg: RaftMessage): void {
    const to = msg.toPeer?.storeId;
    if (to === undefined) throw new InvalidRaftMessageError(`region ${msg.regionId}: no to_peer`);
    if (this.closed) return; // the store is stopping: its raft is gone, nobody to tell
    const dest = this.dest(to);
    if (msg.message?.msgType === MessageType.MsgSnapshot) {
      this.snapshots.send(dest, msg);
      return;
    }
    if (dest.isBackingOff(this.runtime.now())) {
      this.unreachable(msg);
      return;
    }
    const fitted = fitRaftMessage(msg, this.maxMessageBytes);
    if (fitted.dropped) this.dropOversized(dest, msg, fitted.size);
    // The queue keeps at least the newest message, whatever its size: it alone fits one stream message.
    const overflow = dest.enqueue(fitted.parts, { maxMessages: this.maxQueued, maxBytes: this.maxQueuedBytes });
    for (const oldest of overflow) this.unreachable(oldest.msg);
    if (overflow.length > 0 && !dest.overflowing) {
      dest.overflowing = true;
      this.log.warn(
        { to_store: to, max_queued: this.maxQueued, max_queued_bytes: this.maxQueuedBytes },
        "raft send queue full: dropping oldest messages",
      );
    }
    if (fitted.parts.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      this.runtime.defer(() => {
        if (this.flushScheduled) this.flush();
      });
    }
  }

  /** A message gRPC would refuse (and fail the stream shared by every region with it): raft hears it was lost. */
  private dropOversized(dest: RaftDestination, msg: RaftMessage, size: number): void {
    this.unreachable(msg);
    const now = this.runtime.now();
    if (now - dest.lastOversizeWarning < OVERSIZE_WARNING_INTERVAL_MS) return;
    dest.lastOversizeWarning = now;
    this.log.warn(
      {
        to_store: dest.storeId,
        region_id: msg.regionId,
        msg_type: msg.message?.msgType,
        bytes: size,
        limit: this.maxMessageBytes,
      },
      "raft message too large for one stream message: dropped",
    );
  }

  flush(): void {
    this.flushScheduled = false;
    for (const dest of this.dests.values()) if (dest.queueLength > 0) this.pump(dest);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flushScheduled = false;
    const snapshotsEnded = this.snapshots.close();
    const ends: Promise<void>[] = [];
    for (const dest of this.dests.values()) {
      // Stopping: unsent messages are lost as in a crash; raft state is on disk.
      const link = dest.close();
      for (const wake of dest.snapshotWaiters.splice(0)) wake();
      if (link) {
        link.stream.end();
        ends.push(this.withGrace(link.done, CLOSE_GRACE_MS).then(() => link.client.close()));
      }
    }
    await Promise.all([...ends, snapshotsEnded]);
  }

  private dest(storeId: bigint): RaftDestination {
    let d = this.dests.get(storeId);
    if (!d) {
      d = new Destination(storeId, new ReconnectBackoff(this.initialBackoffMs, this.maxBackoffMs));
      this.dests.set(storeId, d);
    }
    return d;
  }

  /** Writes queued messages in order until the stream pushes back; connects first if needed. */
  private pump(dest: RaftDestination): void {
    if (this.closed) return;
    const state = dest.state;
    if (state.kind !== "connected") {
      const now = this.runtime.now();
      if (dest.isBackingOff(now)) this.dropQueued(dest.takeQueued());
      else if (dest.canConnect(now)) void this.connect(dest);
      return;
    }
    const link = state;
    const stream = link.stream;
    if (link.blocked) return;
    stream.holdWrites?.();
    try {
      this.write(dest, link, stream);
    } finally {
      stream.releaseWrites?.();
    }
  }

  private write(dest: RaftDestination, link: StreamLink<RaftStream, LinkClient>, stream: RaftStream): void {
    for (let next = dest.peek(); next; next = dest.peek()) {
      const { msg, size } = next;
      // In-flight bytes wait for gRPC (and the receiver's flow control) before more are written.
      if (link.inFlightBytes > 0 && link.inFlightBytes + size > this.maxInFlightBytes) {
        this.stats.backpressureWaits++;
        link.blocked = true;
        return;
      }
      dest.shift();
      link.inFlight.set(`${msg.regionId}/${msg.toPeer?.id}`, msg);
      this.stats.written++;
      link.inFlightBytes += size;
      if (hopTrace && msg.message) traceMessage("stream.write", msg.message);
      const written = stream.write(msg, () => this.onWritten(dest, stream, size));
      if (!written && stream.writableLength >= RAFT_WRITE_WINDOW) {
        this.stats.backpressureWaits++;
        link.blocked = true;
        // A write callback may have unblocked the stream before it drained: its listener still waits.
        if (link.awaitingDrain) return;
        link.awaitingDrain = true;
        stream.once("drain", () => {
          link.awaitingDrain = false;
          if (!dest.linkOf(stream)) return;
          link.blocked = false;
          dest.overflowing = false;
          this.pump(dest);
        });
        return;
      }
    }
    dest.overflowing = false;
  }

  /** A write completed (or failed with its stream): its bytes no longer count as in flight. */
  private onWritten(dest: RaftDestination, stream: RaftStream, size: number): void {
    const link = dest.linkOf(stream);
    if (!link) return; // a broken stream's accounting went with it
    link.inFlightBytes -= size;
    if (
      link.blocked &&
      stream.writableLength < RAFT_WRITE_WINDOW &&
      link.inFlightBytes + (dest.peek()?.size ?? 0) <= this.maxInFlightBytes
    ) {
      link.blocked = false;
      dest.overflowing = false;
      this.pump(dest);
    }
  }

  private async connect(dest: RaftDestination): Promise<void> {
    dest.beginConnect(this.runtime.now());
    let addr = dest.addr;
    try {
      addr ??= await this.resolve(dest.storeId);
      if (this.closed) return;
      dest.addr = addr;
      const tcp = this.tcpDial !== undefined && !dest.refusesTcp;
      const dial = tcp ? this.tcpDial! : this.grpcDial;
      const { client, stream, done } = dial(addr, (s, cause, refused) => {
        if (dest.linkOf(s)) this.wireOutcome(dest, tcp, refused === true);
        this.onStreamBroken(dest, s, cause);
      });
      if (!dest.opened({ client, stream, done }, this.runtime.now())) {
        client.close(); // closed while dialing
        return;
      }
      this.stats.streamsOpened++;
      this.log.debug({ to_store: dest.storeId, addr }, "raft stream opened");
    } catch (err) {
      this.report(
        dest,
        dest.connectFailed(this.runtime.now(), () => this.runtime.random()),
        new DestinationUnreachableError(dest.storeId, addr, err),
      );
      return;
    }
    this.pump(dest);
  }

  /**
   * A store that took the TCP connection but not the wire (an older version) is dialed over gRPC
   * until that stream breaks (it may have been upgraded meanwhile); then TCP is tried again.
   */
  private wireOutcome(dest: RaftDestination, tcp: boolean, refused: boolean): void {
    if (tcp && refused && !dest.refusesTcp) {
      dest.refusesTcp = true;
      this.log.info(
        { to_store: dest.storeId, addr: dest.addr },
        "store does not take raft over TCP: using gRPC streams",
      );
    } else if (!tcp) dest.refusesTcp = false;
  }

  /** The resolver, with a deadline: a hung resolver must not hold a destination in "connecting" forever. */
  private resolve(storeId: bigint): Promise<string> {
    const ms = this.opts.resolveTimeoutMs ?? 5000;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.runtime.setTimeout(
        () => reject(new StoreNotFoundError(storeId, `address resolution timed out after ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([this.opts.resolver.resolve(storeId), timeout]).finally(() => this.runtime.clearTimeout(timer));
  }

  private onStreamBroken(dest: RaftDestination, stream: RaftStream, cause: unknown): void {
    const addr = dest.addr;
    // Undefined when already handled (callback and 'error' both fire) or the transport is closing.
    const failure = dest.streamBroken(stream, this.runtime.now(), () => this.runtime.random());
    if (!failure) return;
    failure.client?.close();
    this.stats.streamFailures++;
    this.report(dest, failure, new DestinationUnreachableError(dest.storeId, addr, cause));
  }

  /** The destination went down (it now backs off): report what was lost. */
  private report(dest: RaftDestination, failure: LinkFailure<LinkClient> | undefined, err: TransportError): void {
    if (!failure) return; // closed meanwhile: nobody to tell
    for (const msg of failure.inFlight) this.unreachable(msg);
    this.dropQueued(failure.queued);
    // Only the first failure after a healthy stream is worth a warning; a store that stays
    // down would otherwise fill the log with one line per reconnect attempt.
    const fields = {
      to_store: String(dest.storeId),
      error: err.message,
      backoff_ms: failure.waitMs,
      lost: failure.inFlight.length + failure.queued.length,
    };
    if (failure.firstFailure) this.log.warn(fields, "raft stream to store failed");
    else this.log.debug(fields, "raft stream to store still failing");
  }

  private dropQueued(queued: readonly QueuedMessage[]): void {
    // One report per (region, peer) is all raft needs.
    const seen = new Set<string>();
    for (const { msg } of queued) {
      const key = `${msg.regionId}/${msg.toPeer?.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      this.unreachable(msg);
    }
  }

  private unreachable(msg: RaftMessage): void {
    this.stats.dropped++;
    queueMicrotask(() => {
      if (!this.closed) this.events.onUnreachable?.(msg);
    });
  }

  /** Waits for `p`, but no longer than `ms`. */
  private withGrace(p: Promise<void>, ms: number): Promise<void> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<void>((r) => (timer = this.runtime.setTimeout(r, ms)));
    return Promise.race([p, timeout]).finally(() => this.runtime.clearTimeout(timer));
  }
}
