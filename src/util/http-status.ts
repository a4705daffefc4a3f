/**
 * The small HTTP server behind a process's status address (/metrics, JSON status): listen, and
 * say plainly when the port is taken.
 */
import { once } from "node:events";
import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import type { TlsConfig } from "./tls.js";
import { logTlsRefusals } from "./tls-refusals.js";

export class StatusAddressInUseError extends Error {
  constructor(readonly addr: string) {
    super(
      `cannot listen on status address ${addr}: address in use (pass --status-addr to pick another, or "" to disable it)`,
    );
    this.name = "StatusAddressInUseError";
  }
}

export type StatusRoute = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface RunningStatusServer {
  /** host:port it listens on (the port resolved when 0 was asked). */
  addr: string;
  close(): Promise<void>;
}

/** "host:port" -> parts; the port must be a number. */
export function splitStatusAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`status address ${JSON.stringify(addr)} is not host:port`);
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port };
}

/** TiKV's offset from a store's gRPC port to its status port (20160 -> 20180). */
export const STATUS_PORT_OFFSET = 20;

/** The default status address of a store listening on `grpcAddr`. */
export function defaultStatusAddr(grpcAddr: string): string {
  const i = grpcAddr.lastIndexOf(":");
  const port = Number(grpcAddr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port + STATUS_PORT_OFFSET > 65535) {
    throw new Error(`cannot derive a status address from ${JSON.stringify(grpcAddr)}; pass --status-addr`);
  }
  // An ephemeral gRPC port (0) gets an ephemeral status port.
  return `${grpcAddr.slice(0, i)}:${port === 0 ? 0 : port + STATUS_PORT_OFFSET}`;
}

export interface StatusServerOptions {
  /** Serve HTTPS and require a client certificate signed by its CA. */
  tls?: TlsConfig;
  /** Where refused TLS handshakes are logged. */
  log?: Logger;
}

/** A plain HTTP server, or with TLS an HTTPS one that requires client certificates (and logs refusals). */
export function createStatusHttpServer(opts: StatusServerOptions, handler: RequestListener): Server {
  if (!opts.tls) return createServer(handler);
  const server = createHttpsServer(opts.tls.httpsServerOptions(), handler);
  logTlsRefusals(server, opts.log ?? silentLogger, "status");
  return server;
}

/** Longest status address a store may register (a DNS name is at most 253 bytes, plus the port). */
const MAX_STATUS_ADDR_LENGTH = 260;

/**
 * Whether `addr` is a status address others can dial: host:port (a bracketed IPv6 host allowed),
 * a port from 1 to 65535, no wildcard host, and nothing a URL would read as a path or user.
 */
export function isDialableStatusAddr(addr: string): boolean {
  if (addr.length > MAX_STATUS_ADDR_LENGTH) return false;
  const m = /^(?:([^\s/:@?#[\]]+)|\[([0-9a-fA-F:.]+)\]):(\d{1,5})$/.exec(addr);
  if (!m) return false;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 && !isWildcardHost(host);
}

function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

/**
 * Where a store's /metrics is, as the scheduler knows the store: the status address it
 * registered, else (a TinyKV store, or one that registered none) its gRPC port + 20.
 */
export function storeStatusAddr(store: { address: string; statusAddress?: string }): string {
  return store.statusAddress ? store.statusAddress : defaultStatusAddr(store.address);
}

/**
 * The status address a store registers with the scheduler: the advertised one, with a wildcard
 * listen host replaced by the host others dial for gRPC. Undefined when the store serves none.
 */
export function statusAddrToRegister(statusAddr: string | undefined, grpcAdvertiseAddr: string): string | undefined {
  if (!statusAddr) return undefined;
  const { host, port } = splitStatusAddr(statusAddr);
  if (!isWildcardHost(host) && host !== "") return statusAddr;
  const grpcHost = grpcAdvertiseAddr.slice(0, grpcAdvertiseAddr.lastIndexOf(":"));
  return `${grpcHost}:${port}`;
}

/** Serves GET routes by path; anything else is 404 (or 405 for another method). */
export async function listenStatus(
  addr: string,
  routes: Record<string, StatusRoute>,
  opts: StatusServerOptions = {},
): Promise<RunningStatusServer> {
  const { host, port } = splitStatusAddr(addr);
  const server: Server = createStatusHttpServer(opts, (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const route = routes[path];
    if (!route) return sendText(res, 404, `unknown path ${path}; try ${Object.keys(routes).join(", ")}\n`);
    if (req.method !== "GET" && req.method !== "HEAD")
      return sendText(res, 405, `${req.method} not allowed on ${path}\n`);
    Promise.resolve(route(req, res)).catch((err: unknown) =>
      sendText(res, 500, `${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  server.listen(port, host);
  try {
    // once() rejects with the server's 'error' (EADDRINUSE...) while it waits for 'listening'.
    await once(server, "listening");
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === "EADDRINUSE" ? new StatusAddressInUseError(addr) : err;
  }
  const bound = (server.address() as AddressInfo).port;
  return {
    addr: `${host.includes(":") ? `[${host}]` : host}:${bound}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function sendText(
  res: ServerResponse,
  code: number,
  body: string,
  contentType = "text/plain; charset=utf-8",
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(code, { "content-type": contentType });
  res.end(body);
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  sendText(
    res,
    code,
    JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n",
    "application/json",
  );
}
