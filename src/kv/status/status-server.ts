/**
 * A store's status address: Prometheus `/metrics` and a JSON `/status` (what the store is and
 * holds). By default the gRPC port + 20 on the same host, as TiKV's 20160 -> 20180.
 */
import { listenStatus, sendJson, sendText, type RunningStatusServer } from "../../util/http-status.js";
import type { StoreMetrics } from "./store-metrics.js";

/** TiKV's offset from the gRPC port to the status port. */
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

export function startStoreStatusServer(addr: string, metrics: StoreMetrics, status: () => unknown): Promise<RunningStatusServer> {
  return listenStatus(addr, {
    "/metrics": async (_req, res) => sendText(res, 200, await metrics.text(), metrics.registry.contentType),
    "/status": (_req, res) => sendJson(res, 200, status()),
  });
}
