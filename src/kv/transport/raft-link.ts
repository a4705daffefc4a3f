import * as net from "node:net";
import type { RaftMessage } from "../../proto/raft_serverpb.js";
import { RaftMessage as RaftMessagePb } from "../../proto/raft_serverpb.js";
import { TinyKvClient } from "../../proto/tinykvpb.js";
import type * as grpc from "@grpc/grpc-js";
import { splitHostPort } from "../../util/host-port.js";
import type { Runtime, TimerHandle } from "../../util/runtime.js";
import { TransportError } from "./errors.js";
import { frameHeader, RAFT_TCP_MAGIC } from "./tcp-frames.js";

/** What the transport writes raft messages to: a gRPC `Raft` call, or a raft-over-TCP connection. */
export interface RaftWriteStream {
  /** Queues one message; `done` runs once it left (or the stream broke). False: wait for 'drain'. */
  write(msg: RaftMessage, done: () => void): boolean;
  /** Messages written whose `done` has not run. */
  readonly writableLength: number;
  once(event: "drain", listener: () => void): unknown;
  end(): void;
  /** Writes between hold and release reach the socket together, in one system call. */
  holdWrites?(): void;
  releaseWrites?(): void;
}

/** An open link to a destination store (it may still be dialing under it). */
export interface OpenedLink {
  client: { close(): void };
  stream: RaftWriteStream;
  /** Settles when the link is gone for good. */
  done: Promise<void>;
}

/**
 * Opens a link to `addr`; `onBroken` runs once it fails or ends (maybe more than once: callers
 * dedupe). `refused`: the destination took the connection but not the wire (raft over TCP to a
 * store that does not speak it): the caller should dial it another way.
 */
export type RaftDialer = (
  addr: string,
  onBroken: (stream: RaftWriteStream, cause: unknown, refused?: boolean) => void,
) => OpenedLink;

/** The destination answered the raft-over-TCP magic with something else, or closed without answering. */
export class RaftWireRefusedError extends TransportError {
  constructor(addr: string) {
    super(`${addr} does not take raft over TCP (an older store, or TLS)`);
    this.name = "RaftWireRefusedError";
  }
}

/** The gRPC dialer: one client-streaming `Raft` call on its own channel. */
export function grpcDialer(credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions): RaftDialer {
  return (addr, onBroken) => {
    const client = new TinyKvClient(addr, credentials, options);
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    const stream = client.raft((err) => {
      settle();
      onBroken(stream, err ?? "the peer ended the stream");
    });
    // The callback above carries the status; an 'error' event (if any) is the same failure.
    stream.on("error", (err: Error) => onBroken(stream, err));
    return { client, stream, done };
  };
}

/** Raft over TCP pings this often (gRPC's raft keepalive: 3 s)... */
export const TCP_KEEPALIVE_MS = 3000;
/** ...and gives the connection up when nothing came back for this long (gRPC's: 10 s). */
export const TCP_KEEPALIVE_TIMEOUT_MS = 10_000;

/** A raft-over-TCP connection as a RaftWriteStream (tcp-frames.ts has the wire). */
class TcpRaftStream implements RaftWriteStream {
  private pending = 0;

  constructor(private readonly socket: net.Socket) {}

  get writableLength(): number {
    return this.pending;
  }

  write(msg: RaftMessage, done: () => void): boolean {
    const body = RaftMessagePb.encode(msg).finish();
    this.pending++;
    this.socket.write(frameHeader(body.length));
    return this.socket.write(body, () => {
      this.pending--;
      done();
    });
  }

  once(event: "drain", listener: () => void): unknown {
    return this.socket.once(event, listener);
  }

  end(): void {
    this.socket.end();
  }

  holdWrites(): void {
    this.socket.cork();
  }

  releaseWrites(): void {
    this.socket.uncork();
  }
}

/** The TCP dialer: a connection to the store's gRPC port, told apart there by its first bytes. */
export function tcpDialer(runtime: Pick<Runtime, "now" | "setInterval" | "clearInterval">): RaftDialer {
  return (addr, onBroken) => {
    const { host, port } = splitHostPort(addr);
    const socket = net.connect({ host: host ?? "127.0.0.1", port });
    socket.setNoDelay(true);
    socket.write(RAFT_TCP_MAGIC);
    const stream = new TcpRaftStream(socket);
    let lastHeard = runtime.now();
    let keepalive: TimerHandle | undefined = runtime.setInterval(() => {
      if (runtime.now() - lastHeard < TCP_KEEPALIVE_TIMEOUT_MS) socket.write(frameHeader(0));
      else socket.destroy(new Error(`no keepalive answer for ${TCP_KEEPALIVE_TIMEOUT_MS} ms`));
    }, TCP_KEEPALIVE_MS);
    // Until the receiver answers the magic with the magic, this may be a store that does not take
    // the wire (it drops the connection as bad HTTP/2, possibly after a GOAWAY of its own).
    let connected = false;
    let hello: Buffer | undefined = Buffer.alloc(0);
    socket.once("connect", () => (connected = true));
    socket.on("data", (chunk: Buffer) => {
      lastHeard = runtime.now();
      if (!hello) return;
      hello = Buffer.concat([hello, chunk]);
      const n = Math.min(hello.length, RAFT_TCP_MAGIC.length);
      if (!hello.subarray(0, n).equals(RAFT_TCP_MAGIC.subarray(0, n))) socket.destroy(new RaftWireRefusedError(addr));
      else if (hello.length >= RAFT_TCP_MAGIC.length) hello = undefined;
    });
    let cause: unknown = "the peer closed the connection";
    socket.on("error", (err) => (cause = err));
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    socket.on("close", () => {
      runtime.clearInterval(keepalive);
      keepalive = undefined;
      settle();
      const refused = connected && hello !== undefined;
      onBroken(stream, refused ? new RaftWireRefusedError(addr) : cause, refused);
    });
    return { client: { close: () => socket.destroy() }, stream, done };
  };
}
