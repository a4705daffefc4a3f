/**
 * One clear log line when a TLS listener refuses a peer's handshake (no certificate, a certificate
 * from another CA, plaintext on a TLS port). Node's TLS server drops such connections and only
 * tells the server through its 'tlsClientError' event; the client sees a reset connection.
 */
import type { Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "./logger.js";
import type { Runtime } from "./runtime.js";
import { realRuntime } from "./runtime.js";

/** A peer that keeps retrying gets one line per this many ms (with how many were not logged). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

type TlsError = Error & { code?: string };

/**
 * What a refusal means, in the words an operator needs (OpenSSL's own are kept in `error`). Node
 * accepts any client certificate inside the handshake and checks it afterwards: a certificate that
 * does not verify shows up as the socket's authorizationError with a reset, not as an OpenSSL error.
 */
export function refusalReason(err: TlsError, authorizationError: string | undefined): string {
  const text = `${err.code ?? ""} ${err.message}`.toLowerCase();
  if (authorizationError)
    return `the peer's certificate did not verify against --cacert (${authorizationError}): signed by another CA, expired, or not for client use`;
  if (text.includes("peer_did_not_return_a_certificate") || text.includes("peer did not return a certificate"))
    return "the peer presented no client certificate";
  if (text.includes("wrong version number") || text.includes("http request") || text.includes("unknown protocol"))
    return "the peer spoke plaintext to a TLS port (it has no TLS configured)";
  if (err.code === "ECONNRESET")
    return "the peer hung up during the handshake (it may not trust our certificate: another --cacert?)";
  return "the TLS handshake failed";
}

/** Logs every refused handshake on `server` as one warn line, at most one per peer address and reason per 10 s. */
export function logTlsRefusals(
  server: TlsServer,
  log: Logger,
  listener: string,
  clock: Pick<Runtime, "now"> = realRuntime,
): void {
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  // Reading the raw socket's address now caches it: when a certificate fails Node's check the
  // TLS socket is destroyed before 'tlsClientError', and only its parent still knows the peer.
  server.prependListener("connection", (raw: Socket) => void raw.remoteAddress);
  server.on("tlsClientError", (err: TlsError, socket: TLSSocket) => {
    const parent = (socket as TLSSocket & { _parent?: Socket })._parent;
    const peer = `${socket.remoteAddress ?? parent?.remoteAddress ?? "?"}:${socket.remotePort ?? parent?.remotePort ?? "?"}`;
    const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
    const reason = refusalReason(err, authorizationError);
    const key = `${peer.slice(0, peer.lastIndexOf(":"))} ${reason}`;
    const now = clock.now();
    const seen = lastLogged.get(key);
    if (seen && now - seen.at < REFUSAL_LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    if (lastLogged.size > 1024) lastLogged.clear(); // many distinct peers: forget rather than grow without bound
    lastLogged.set(key, { at: now, suppressed: 0 });
    log.warn(
      {
        listener,
        peer,
        reason,
        error: err.message.trim(),
        ...(seen?.suppressed ? { refused_since_last_line: seen.suppressed } : {}),
      },
      `refused a TLS connection from ${peer}: ${reason}`,
    );
  });
}

/**
 * The same for a gRPC server's listeners, once bindAsync has resolved. grpc-js offers no public
 * hook for failed handshakes, so this reaches its (private) map of http2 servers; if a grpc-js
 * version no longer has it, this logs once that refusals will not be logged and returns false.
 */
const watched = new WeakSet<object>();

export function logGrpcTlsRefusals(server: grpc.Server, log: Logger, listener: string): boolean {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn({ listener }, "this grpc-js version hides its TLS servers: refused handshakes will not be logged");
    return false;
  }
  for (const http2Server of servers.keys()) {
    // A server bound on several addresses has several listeners; each gets one handler.
    if (watched.has(http2Server as object)) continue;
    watched.add(http2Server as object);
    logTlsRefusals(http2Server as TlsServer, log, listener);
  }
  return true;
}
