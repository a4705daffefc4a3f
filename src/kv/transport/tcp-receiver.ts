import type { Socket } from "node:net";
import type { Logger } from "../../util/logger.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { hopTrace } from "../../util/hop-trace.js";
import { traceMessage } from "./trace-message.js";
import { decodeRaftFrame, FrameDecoder, PONG, RAFT_TCP_MAGIC } from "./tcp-frames.js";
import type { RaftMessageSink } from "./transport.js";
import { RaftConnectionLimitError } from "./errors.js";

/** A connection that has not said what it is by then is closed (it holds a socket and nothing else). */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** Garbage from a peer is logged at most this often per receiver (a broken peer reconnects in a loop). */
const BAD_PEER_WARNING_INTERVAL_MS = 10_000;

/**
 * Tells raft-over-TCP connections from everything else on a shared port: reads until the first
 * bytes match RAFT_TCP_MAGIC (`onRaft` gets the bytes after it) or cannot (`onOther` gets the
 * socket with every byte read put back, e.g. for gRPC's HTTP/2). Silent connections are closed.
 * A client may reset the connection at any time (ECONNRESET): the socket then just closes, as an
 * 'error' with no listener would throw and take the process down.
 */
export function sniffRaftConnection(
  socket: Socket,
  runtime: Pick<Runtime, "setTimeout" | "clearTimeout">,
  onRaft: (socket: Socket, rest: Buffer) => void,
  onOther: (socket: Socket) => void,
): void {
  let head: Buffer = Buffer.alloc(0);
  let timer: TimerHandle | undefined = runtime.setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
  const finish = () => {
    runtime.clearTimeout(timer);
    timer = undefined;
    socket.removeListener("readable", onReadable);
    socket.removeListener("close", finish);
  };
  const onReadable = () => {
    for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, RAFT_TCP_MAGIC.length);
      if (!head.subarray(0, n).equals(RAFT_TCP_MAGIC.subarray(0, n))) {
        finish();
        socket.unshift(head);
        onOther(socket);
        return;
      }
      if (head.length >= RAFT_TCP_MAGIC.length) {
        finish();
        onRaft(socket, head.subarray(RAFT_TCP_MAGIC.length));
        return;
      }
    }
  };
  // Kept after the sniff: whoever takes the socket then adds its own, this one only keeps it harmless.
  socket.on("error", () => undefined);
  socket.on("readable", onReadable);
  socket.on("close", finish);
}

/** The receiver's bounds: what one broken or hostile client can hold, and what all of them can. */
export interface RaftReceiverLimits {
  /** A raft connection that sends nothing for this long is closed (senders ping every 3 s). */
  idleTimeoutMs: number;
  /** Raft connections open at once (one per peer store, a few more while they reconnect); more are closed. */
  maxConnections: number;
  /** Bytes of partial frames held over all raft connections; the connection that takes them past it is closed. */
  maxBufferedBytes: number;
  /**
   * Connections on the shared port that have not yet shown whether they are raft or gRPC (each is
   * held up to FIRST_BYTES_TIMEOUT_MS); one accepted past this is closed at once.
   */
  maxUndecidedConnections: number;
}

export const DEFAULT_RAFT_RECEIVER_LIMITS: RaftReceiverLimits = {
  idleTimeoutMs: 30_000,
  maxConnections: 256,
  maxBufferedBytes: 256 * 1024 * 1024,
  maxUndecidedConnections: 1024,
};

/**
 * The receiving end of raft over TCP: every message frame goes to the sink (which validates the
 * envelope, as for the gRPC `Raft` rpc); pings are answered. A peer that sends what is not a
 * frame of this wire, goes quiet, or goes past a bound (RaftReceiverLimits) is disconnected,
 * never trusted further; the store goes on. Memory: at most one partial frame per connection
 * (≤ 16 MiB), and `maxBufferedBytes` over all of them.
 */
export class RaftTcpReceiver {
  private readonly sockets = new Map<Socket, { timer: TimerHandle | undefined }>();
  readonly limits: RaftReceiverLimits;
  private bufferedBytes = 0;
  private lastBadPeerWarning = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly sink: RaftMessageSink,
    private readonly runtime: Pick<Runtime, "now" | "setTimeout" | "clearTimeout">,
    private readonly log: Logger,
    limits: Partial<RaftReceiverLimits> = {},
  ) {
    this.limits = { ...DEFAULT_RAFT_RECEIVER_LIMITS, ...limits };
  }

  /** Serves a sniffed raft connection; `rest` is what followed the magic in the first read. */
  accept(socket: Socket, rest: Buffer): void {
    socket.on("error", () => undefined); // a peer store going away is normal (restart, partition)
    if (this.sockets.size >= this.limits.maxConnections) {
      const err = new RaftConnectionLimitError("maxConnections", this.limits.maxConnections, "too many connections");
      this.badPeer(socket, err);
      return;
    }
    const conn: { timer: TimerHandle | undefined } = { timer: undefined };
    this.sockets.set(socket, conn);
    socket.setNoDelay(true);
    socket.write(RAFT_TCP_MAGIC); // "this store takes raft over TCP" (raft-link.ts waits for it)
    let pinged = false;
    let held = 0; // this connection's share of bufferedBytes
    let lastData = this.runtime.now();
    const decoder = new FrameDecoder((body) => {
      if (body.length === 0) {
        pinged = true;
        return;
      }
      const msg = decodeRaftFrame(body);
      if (hopTrace && msg.message) traceMessage("recv", msg.message);
      this.sink.onRaftMessage(msg);
    });
    const onData = (chunk: Buffer) => {
      lastData = this.runtime.now();
      try {
        decoder.push(chunk);
      } catch (err) {
        this.badPeer(socket, err);
        return;
      }
      this.bufferedBytes += decoder.bufferedBytes - held;
      held = decoder.bufferedBytes;
      if (held > 0 && this.bufferedBytes > this.limits.maxBufferedBytes) {
        const detail = `partial frames over all connections hold ${this.bufferedBytes} bytes`;
        this.badPeer(socket, new RaftConnectionLimitError("maxBufferedBytes", this.limits.maxBufferedBytes, detail));
        return;
      }
      // One answer per read says "alive" as well as one per ping, and none while the last one is
      // still unsent: a peer that pings without reading must not make us queue a write per 4 bytes.
      if (pinged && socket.writableLength === 0) socket.write(PONG);
      pinged = false;
    };
    // One timer per connection, re-armed only when it fires: a read just records the time.
    const idle = this.limits.idleTimeoutMs;
    const arm = (ms: number) => {
      conn.timer = this.runtime.setTimeout(() => {
        const quiet = this.runtime.now() - lastData;
        if (quiet < idle) arm(idle - quiet);
        else this.badPeer(socket, new RaftConnectionLimitError("idleTimeoutMs", idle, `nothing for ${quiet} ms`));
      }, ms);
    };
    arm(idle);
    socket.on("close", () => {
      this.runtime.clearTimeout(conn.timer);
      this.bufferedBytes -= held;
      held = 0;
      this.sockets.delete(socket);
    });
    socket.on("data", onData);
    socket.resume(); // the sniffer read it paused
    if (rest.length > 0) onData(rest);
  }

  /** Closes every raft connection (the store is stopping). */
  close(): void {
    for (const [socket, conn] of this.sockets) {
      this.runtime.clearTimeout(conn.timer);
      socket.destroy();
    }
  }

  private badPeer(socket: Socket, err: unknown): void {
    socket.destroy();
    const now = this.runtime.now();
    if (now - this.lastBadPeerWarning < BAD_PEER_WARNING_INTERVAL_MS) return;
    this.lastBadPeerWarning = now;
    this.log.warn({ err, remote: `${socket.remoteAddress}:${socket.remotePort}` }, "raft connection closed");
  }
}
