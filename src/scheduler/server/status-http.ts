import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { StoreState } from "../../proto/metapb.js";
import { createStatusHttpServer } from "../../util/http-status.js";
import type { Logger } from "../../util/logger.js";
import type { TlsConfig } from "../../util/tls.js";
import { formatKey } from "../../util/bytes.js";
import type { SchedulerCore } from "../core/core.js";
import { SchedulerError, InvalidRequestError } from "../errors.js";
import type { RegionInfo } from "../core/region-info.js";
import { composeTs } from "../tso/tso.js";
import { Dashboard } from "./dashboard-http.js";
import { SchedulerMetrics } from "./metrics.js";

function regionJson(r: RegionInfo): Record<string, unknown> {
  return {
    id: r.meta.id.toString(),
    start_key: formatKey(r.meta.startKey),
    end_key: formatKey(r.meta.endKey),
    epoch: { conf_ver: r.meta.regionEpoch?.confVer.toString(), version: r.meta.regionEpoch?.version.toString() },
    peers: r.meta.peers.map((p) => ({ id: p.id.toString(), store_id: p.storeId.toString() })),
    leader: r.leader ? { id: r.leader.id.toString(), store_id: r.leader.storeId.toString() } : null,
    pending_peers: r.pendingPeers.map((p) => p.id.toString()),
    approximate_size_mib: r.approximateSize,
  };
}

/** Builds the JSON for one GET path, or undefined for an unknown path. */
export function statusJson(core: SchedulerCore, path: string): unknown {
  const now = core.cluster.clock();
  const stores = () => core.cluster.getStores().map((s) => ({ ...s.toJSON(now), down: core.cluster.isStoreDown(s) }));
  const regions = () => core.cluster.regions.all().map(regionJson);
  const operators = () => ({
    running: core.oc.all().map((op) => op.toJSON()),
    recent: core.oc.recent().map((f) => ({ ...f.op.toJSON(), finished_at_ms: f.finishedAtMs })),
  });
  const tso = () => {
    const last = core.tso.last();
    return {
      physical: last.physical,
      logical: last.logical,
      ts: composeTs(last).toString(),
      saved_high_water_ms: core.tso.savedHighWater(),
    };
  };
  switch (path) {
    case "/status":
      return {
        cluster_id: core.clusterId.toString(),
        bootstrapped: core.isBootstrapped(),
        max_replicas: core.cluster.maxReplicas,
        store_count: core.cluster.getStores().length,
        region_count: core.cluster.regions.size,
        running_operators: core.oc.all().length,
        scheduling_prepared: core.coordinator.isPrepared(),
        last_alloc_id: core.ids.current().toString(),
        tso: tso(),
      };
    case "/stores":
      return { stores: stores() };
    case "/regions":
      return { count: core.cluster.regions.size, regions: regions() };
    case "/operators":
      return operators();
    case "/tso":
      return tso();
    default:
      return undefined;
  }
}

const STATES: Record<string, StoreState> = {
  up: StoreState.Up,
  offline: StoreState.Offline,
  tombstone: StoreState.Tombstone,
};

/**
 * JSON status over HTTP: GET /status, /stores, /regions, /operators, /tso; Prometheus GET /metrics;
 * the live dashboard at GET / (its data at /dashboard/data).
 * POST /stores/<id>/state/<up|offline|tombstone> changes a store's state (drain / remove a store).
 */
export function createStatusServer(core: SchedulerCore, log: Logger, tls?: TlsConfig): Server {
  const metrics = new SchedulerMetrics(core);
  const dashboard = new Dashboard(core, tls);
  const send = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
  };
  return createStatusHttpServer({ tls, log }, (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname.replace(/\/+$/, "") || "/";
    if (req.method === "GET" && path === "/metrics") {
      metrics.text().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(text);
        },
        (err: unknown) => send(res, 500, { error: (err as Error).message }),
      );
      return;
    }
    if (req.method === "GET") {
      if (dashboard.serve(path, res, (code, body) => send(res, code, body))) return;
      const body = statusJson(core, path);
      return body === undefined ? send(res, 404, { error: `unknown path ${path}` }) : send(res, 200, body);
    }
    const m = /^\/stores\/(\d+)\/state\/(\w+)$/.exec(path);
    if (req.method === "POST" && m) {
      const state = STATES[m[2]!.toLowerCase()];
      if (state === undefined) return send(res, 400, { error: `unknown state ${m[2]}; use up, offline or tombstone` });
      core.setStoreState(BigInt(m[1]!), state).then(
        () => send(res, 200, { ok: true }),
        (err) =>
          send(res, err instanceof SchedulerError || err instanceof InvalidRequestError ? 400 : 500, {
            error: (err as Error).message,
          }),
      );
      return;
    }
    log.debug({ method: req.method, path }, "status api: unknown request");
    send(res, 404, { error: `unknown request ${req.method} ${path}` });
  });
}
