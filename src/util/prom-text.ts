/**
 * Reads a store's Prometheus text exposition into the few figures a person looks at: requests by
 * method and outcome, the latency histogram, regions and leaders. Used by the scheduler's
 * dashboard (which scrapes the stores for the page) and by `tinykv-ctl metrics`. The text comes
 * from the network, so a line that does not parse is skipped, never thrown on.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parsePromText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) continue;
    const value = Number(m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c));
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** One cumulative histogram bucket: requests that took at most `le` seconds. */
export interface Bucket {
  le: number;
  count: number;
}

export interface StoreMetricsSummary {
  /** Requests served, by method and outcome (cumulative since the store started). */
  requests: { method: string; outcome: string; count: number }[];
  requestsTotal: number;
  /** The request latency histogram summed over methods, cumulative buckets ending with +Inf. */
  latencyBuckets: Bucket[];
  latencyCount: number;
  latencySumSeconds: number;
  regions: number | undefined;
  leaders: number | undefined;
}

export const REQUESTS_SERIES = "tinykv_grpc_requests_total";
export const LATENCY_SERIES = "tinykv_grpc_request_duration_seconds";

export function summarizeStoreMetrics(samples: PromSample[]): StoreMetricsSummary {
  const requests: StoreMetricsSummary["requests"] = [];
  const buckets = new Map<number, number>();
  let latencyCount = 0;
  let latencySumSeconds = 0;
  let regions: number | undefined;
  let leaders: number | undefined;
  for (const s of samples) {
    switch (s.name) {
      case REQUESTS_SERIES:
        requests.push({ method: s.labels.method ?? "?", outcome: s.labels.outcome ?? "?", count: s.value });
        break;
      case `${LATENCY_SERIES}_bucket`: {
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        if (!Number.isNaN(le)) buckets.set(le, (buckets.get(le) ?? 0) + s.value);
        break;
      }
      case `${LATENCY_SERIES}_count`:
        latencyCount += s.value;
        break;
      case `${LATENCY_SERIES}_sum`:
        latencySumSeconds += s.value;
        break;
      case "tinykv_store_regions":
        regions = s.value;
        break;
      case "tinykv_store_leaders":
        leaders = s.value;
        break;
    }
  }
  requests.sort((a, b) => a.method.localeCompare(b.method) || a.outcome.localeCompare(b.outcome));
  return {
    requests,
    requestsTotal: requests.reduce((sum, r) => sum + r.count, 0),
    latencyBuckets: [...buckets].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le),
    latencyCount,
    latencySumSeconds,
    regions,
    leaders,
  };
}

/**
 * Estimates the q-quantile (0..1) from cumulative buckets as Prometheus' histogram_quantile does:
 * linear within the bucket that holds the rank. Undefined when there were no requests; the last
 * finite bound when the rank falls in +Inf (the true value is only known to be above it).
 */
export function histogramQuantile(q: number, buckets: Bucket[]): number | undefined {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}
