/**
 * Prometheus metrics with prom-client. Every process (and every store of an in-process test
 * cluster) has its own registry, so one store's series never mix with another's; the process
 * collectors (memory, CPU, event-loop lag, GC) are registered on it too.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export { Counter, Gauge, Histogram, Registry };

/** Latency buckets in seconds: 0.25 ms to 10 s, dense where a healthy store's requests sit. */
export const LATENCY_BUCKETS_SECONDS = [
  0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 10,
];

/** A registry with the process collectors (`process_*`, `nodejs_*`) on it. */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  return registry;
}

/** The content type of the text exposition format. */
export function metricsContentType(registry: Registry): string {
  return registry.contentType;
}
