/**
 * A store's status address: Prometheus `/metrics` and a JSON `/status` (what the store is and
 * holds). By default the gRPC port + 20 on the same host, as TiKV's 20160 -> 20180.
 */
import type { RunningStatusServer, StatusServerOptions } from "../../util/http-status.js";
import { listenStatus, sendJson, sendText } from "../../util/http-status.js";
import type { StoreMetrics } from "./store-metrics.js";

// The default lives with the status server code in util so the scheduler (which may not import
// the store's layers) derives the same address for the dashboard.
export { STATUS_PORT_OFFSET, defaultStatusAddr } from "../../util/http-status.js";

export function startStoreStatusServer(
  addr: string,
  metrics: StoreMetrics,
  status: () => unknown,
  opts: StatusServerOptions = {},
): Promise<RunningStatusServer> {
  return listenStatus(
    addr,
    {
      "/metrics": async (_req, res) => sendText(res, 200, await metrics.text(), metrics.registry.contentType),
      "/status": (_req, res) => sendJson(res, 200, status()),
    },
    opts,
  );
}
