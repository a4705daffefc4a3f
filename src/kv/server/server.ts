import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { TinyKvServer } from "../../proto/tinykvpb.js";
import { TinyKvService } from "../../proto/tinykvpb.js";
import type { Logger } from "../../util/logger.js";
import { silentLogger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import { realRuntime } from "../../util/runtime.js";
import { splitHostPort } from "../../util/host-port.js";
import type { RaftMessageSink } from "../transport/transport.js";
import type { RaftReceiverLimits } from "../transport/tcp-receiver.js";
import { RaftTcpReceiver, sniffRaftConnection } from "../transport/tcp-receiver.js";
import type { TlsConfig } from "../../util/tls.js";
import { grpcServerCredentials } from "../../util/tls.js";
import { logGrpcTlsRefusals } from "../../util/tls-refusals.js";
import { MAX_GRPC_MESSAGE_BYTES } from "./limits.js";

export class PortInUseError extends Error {
  constructor(readonly addr: string) {
    super(`cannot listen on ${addr}: address already in use`);
    this.name = "PortInUseError";
  }
}

/** Server options matching TinyKV's: big windows, a 10+ MiB message ceiling, lenient keepalive. */
/** A port at its cap of undecided connections says so at most this often (a flood would log per connection). */
const UNDECIDED_WARNING_INTERVAL_MS = 10_000;

export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": MAX_GRPC_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_GRPC_MESSAGE_BYTES,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 2000,
};

export interface ListenOptions {
  /** Mutual TLS: clients and other stores must present a certificate signed by its CA. */
  tls?: TlsConfig;
  /** Where refused TLS handshakes are logged. */
  log?: Logger;
  /** More services on the same port (the change feed's cdcpb.ChangeData). */
  services?: Array<{ definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation }>;
  /**
   * Raft over TCP from other stores (transport/tcp-frames.ts) is taken on the same port and goes
   * here. Plaintext only: with TLS every connection is gRPC's, authenticated.
   */
  raftSink?: RaftMessageSink;
  /** Bounds of raft over TCP: idle timeout, connections, partial-frame bytes (defaults: DEFAULT_RAFT_RECEIVER_LIMITS). */
  raftReceiver?: Partial<RaftReceiverLimits>;
  /** Timers for the shared port's first-bytes deadline and the receiver's idle timeout and log throttle. */
  runtime?: Runtime;
}

export interface TinyKvListener {
  server: grpc.Server;
  port: number;
  /** Closes the shared port's own listener and raft connections (after the gRPC server's shutdown). */
  closePort(): Promise<void>;
}

/** A gRPC server for the TinyKv service bound to `addr`; resolves with the bound port. */
export async function listenTinyKv(
  service: TinyKvServer,
  addr: string,
  opts: ListenOptions = {},
): Promise<TinyKvListener> {
  const shared = opts.raftSink !== undefined && !opts.tls;
  const server = shared ? new SharedPortServer(GRPC_SERVER_OPTIONS) : new grpc.Server(GRPC_SERVER_OPTIONS);
  server.addService(TinyKvService, service);
  for (const extra of opts.services ?? []) server.addService(extra.definition, extra.implementation);
  if (server instanceof SharedPortServer && opts.raftSink) return listenShared(server, addr, opts.raftSink, opts);
  const port = await bindAsync(server, addr, opts);
  return { server, port, closePort: async () => undefined };
}

/**
 * A gRPC server whose shutdown also stops the port it shares with raft over TCP, as grpc-js stops
 * the listeners of bindAsync: tryShutdown takes no new connection, forceShutdown closes them all.
 */
class SharedPortServer extends grpc.Server {
  onShutdown: ((force: boolean) => void) | undefined;

  override tryShutdown(callback: (error?: Error) => void): void {
    this.onShutdown?.(false);
    super.tryShutdown(callback);
  }

  override forceShutdown(): void {
    this.onShutdown?.(true);
    super.forceShutdown();
  }
}

/**
 * One port for gRPC and raft over TCP: each connection's first bytes say which it is; gRPC's go
 * to the server through its connection injector, as if it had accepted them itself.
 */
async function listenShared(
  server: SharedPortServer,
  addr: string,
  sink: RaftMessageSink,
  opts: ListenOptions,
): Promise<TinyKvListener> {
  const runtime = opts.runtime ?? realRuntime;
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const receiver = new RaftTcpReceiver(sink, runtime, opts.log ?? silentLogger, opts.raftReceiver);
  const sockets = new Set<net.Socket>();
  const log = opts.log ?? silentLogger;
  const maxUndecided = receiver.limits.maxUndecidedConnections;
  let undecided = 0;
  let lastUndecidedWarning = Number.NEGATIVE_INFINITY;
  const listener = net.createServer((socket) => {
    if (undecided >= maxUndecided) {
      socket.destroy();
      if (runtime.now() - lastUndecidedWarning >= UNDECIDED_WARNING_INTERVAL_MS) {
        lastUndecidedWarning = runtime.now();
        log.warn(
          { addr, maxUndecidedConnections: maxUndecided },
          "too many connections yet to send their first bytes; closing new ones",
        );
      }
      return;
    }
    undecided++;
    let decided = false;
    const decide = () => {
      if (!decided) undecided--;
      decided = true;
    };
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      decide();
    });
    sniffRaftConnection(
      socket,
      runtime,
      (raw, rest) => {
        decide();
        receiver.accept(raw, rest);
      },
      (other) => {
        decide();
        injector.injectConnection(other);
      },
    );
  });
  const closed = new Promise<void>((resolve) => listener.once("close", () => resolve()));
  const closeAll = () => {
    listener.close();
    receiver.close();
    for (const socket of sockets) socket.destroy();
  };
  server.onShutdown = (force) => (force ? closeAll() : listener.close());
  try {
    const { host, port } = splitHostPort(addr);
    await new Promise<void>((resolve, reject) => {
      listener.once("error", (err: NodeJS.ErrnoException) =>
        reject(err.code === "EADDRINUSE" ? new PortInUseError(addr) : err),
      );
      listener.listen(port, host, () => resolve());
    });
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  // Once listening, an accept error (fds exhausted, ...) is logged: with no listener it would throw.
  listener.removeAllListeners("error");
  listener.on("error", (err) => log.warn({ err, addr }, "the shared port failed to accept"));
  return {
    server,
    port: (listener.address() as net.AddressInfo).port,
    async closePort() {
      closeAll();
      injector.destroy();
      // What outlived the gRPC shutdown (a silent connection, a session it let linger) went above.
      await closed;
    },
  };
}

export async function bindAsync(server: grpc.Server, addr: string, opts: ListenOptions = {}): Promise<number> {
  const port = await bindWith(server, addr, grpcServerCredentials(opts.tls));
  if (opts.tls) logGrpcTlsRefusals(server, opts.log ?? silentLogger, "grpc");
  return port;
}

function bindWith(server: grpc.Server, addr: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, credentials, (err, port) => {
      if (err)
        reject(
          /EADDRINUSE|address already in use|No address added/i.test(err.message) ? new PortInUseError(addr) : err,
        );
      else resolve(port);
    });
  });
}

/** Stops taking new calls, lets in-flight ones finish (up to graceMs), then forces the rest. */
export function shutdownGracefully(server: grpc.Server, runtime: Runtime, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = runtime.setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      runtime.clearTimeout(timer);
      resolve();
    });
  });
}
