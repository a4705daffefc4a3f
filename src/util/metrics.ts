/**
 * Prometheus metrics with prom-client. Every store of a process (several in an in-process test
 * cluster) and every scheduler leadership term has its own registry, so their series never mix.
 * The process collectors (memory, CPU, event-loop lag, GC) describe the process, not a store:
 * they live in one registry per process, started once, and every exposition appends them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export { Counter, Gauge, Histogram, Registry };

/** Latency buckets in seconds: 0.25 ms to 10 s, dense where a healthy store's requests sit. */
export const LATENCY_BUCKETS_SECONDS = [
  0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 10,
];

let processCollectors: Registry | undefined;

/**
 * The one registry of the process collectors (`process_*`, `nodejs_*`). Started on first use and
 * never again: each start adds an event-loop delay monitor and a GC observer that are never
 * removed, so starting them per registry leaked one of each per store or leadership term.
 */
function processCollectorRegistry(): Registry {
  if (!processCollectors) {
    processCollectors = new Registry();
    collectDefaultMetrics({ register: processCollectors, eventLoopMonitoringPrecision: 20 });
  }
  return processCollectors;
}

/** The text exposition of `registry` followed by the process collectors' series. */
export async function expositionText(registry: Registry): Promise<string> {
  const [own, process] = await Promise.all([registry.metrics(), processCollectorRegistry().metrics()]);
  return own + process;
}

/** The content type of the text exposition format. */
export function metricsContentType(registry: Registry): string {
  return registry.contentType;
}
