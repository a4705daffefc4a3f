// `tinykv-ctl metrics <store-id|host:port>`: a short summary of one store's Prometheus /metrics —
// requests by method and outcome, a p99 latency estimate, regions and leaders.
import { storeStatusAddr } from "../util/http-status.js";
import type { StoreMetricsSummary } from "../util/prom-text.js";
import { histogramQuantile, parsePromText, summarizeStoreMetrics } from "../util/prom-text.js";
import { errorMessage } from "../util/retry.js";
import type { StatusResponse } from "../util/status-client.js";
import { requestStatus, statusUrl } from "../util/status-client.js";
import type { TlsConfig } from "../util/tls.js";

/** The target named neither a store id nor a host:port. */
export class MetricsTargetError extends Error {
  override name = "MetricsTargetError";
}

export interface MetricsLookup {
  /** The stores the scheduler knows (for a store id's status address). */
  stores(): Promise<{ id: bigint; address: string; statusAddress?: string }[]>;
  /** How long the store's /metrics may take (default 5 s). */
  timeoutMs?: number;
  /** The store's status server speaks HTTPS and wants a client certificate. */
  tls?: TlsConfig;
}

/**
 * Where a store's /metrics is: a store id is looked up at the scheduler and its status address
 * taken as the gRPC port + 20 (the store's default); a host:port is used as the status address.
 */
export async function resolveStatusAddr(target: string, lookup: MetricsLookup): Promise<string> {
  if (/^[1-9]\d{0,19}$/.test(target)) {
    const id = BigInt(target);
    const store = (await lookup.stores()).find((st) => st.id === id);
    if (store === undefined) throw new MetricsTargetError(`metrics: the scheduler knows no store ${target}`);
    return storeStatusAddr(store);
  }
  if (/^[^\s/:]+:\d{1,5}$/.test(target) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(target)) return target;
  throw new MetricsTargetError(
    `metrics: want a store id or the store's status host:port, got ${JSON.stringify(target)}`,
  );
}

export async function fetchStoreMetrics(
  statusAddr: string,
  timeoutMs: number,
  tls?: TlsConfig,
): Promise<StoreMetricsSummary> {
  let res: StatusResponse;
  try {
    res = await requestStatus(statusAddr, "/metrics", { timeoutMs, tls });
  } catch (err) {
    throw new Error(
      `cannot reach the store's status address ${statusAddr} (tinykv-server --status-addr): ${errorMessage(err)}`,
    );
  }
  if (!res.ok) throw new Error(`GET /metrics on ${statusAddr}: HTTP ${res.status}`);
  return summarizeStoreMetrics(parsePromText(res.text));
}

function ms(seconds: number | undefined): string {
  return seconds === undefined ? "-" : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
}

/** The lines `tinykv-ctl metrics` prints; the figures count since the store started. */
export function formatStoreMetrics(statusAddr: string, m: StoreMetricsSummary, tls?: TlsConfig): string[] {
  const lines = [`store metrics at ${statusUrl(statusAddr, "/metrics", tls)} (counts since the store started)`];
  lines.push(`regions: ${m.regions ?? "-"}   leaders: ${m.leaders ?? "-"}`);
  const mean = m.latencyCount > 0 ? m.latencySumSeconds / m.latencyCount : undefined;
  lines.push(
    `requests: ${m.requestsTotal}   latency p50 ${ms(histogramQuantile(0.5, m.latencyBuckets))}, p99 ${ms(histogramQuantile(0.99, m.latencyBuckets))}, mean ${ms(mean)}`,
  );
  const byMethod = new Map<string, Map<string, number>>();
  for (const r of m.requests) {
    if (r.count === 0) continue;
    const outcomes = byMethod.get(r.method) ?? new Map<string, number>();
    outcomes.set(r.outcome, r.count);
    byMethod.set(r.method, outcomes);
  }
  if (byMethod.size === 0) lines.push("  (no requests yet)");
  const width = Math.max(0, ...[...byMethod.keys()].map((k) => k.length));
  for (const [method, outcomes] of byMethod) {
    const parts = [...outcomes].map(([outcome, n]) => `${outcome} ${n}`);
    lines.push(`  ${method.padEnd(width)}  ${parts.join(", ")}`);
  }
  lines.push("p50/p99 are estimated from the latency histogram's buckets (as Prometheus' histogram_quantile)");
  return lines;
}

export async function storeMetricsLines(target: string, lookup: MetricsLookup): Promise<string[]> {
  const statusAddr = await resolveStatusAddr(target, lookup);
  const metrics = await fetchStoreMetrics(statusAddr, lookup.timeoutMs ?? 5_000, lookup.tls);
  return formatStoreMetrics(statusAddr, metrics, lookup.tls);
}
