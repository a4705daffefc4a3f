/**
 * The process collectors (event-loop lag, GC, memory) describe the process: started once however
 * many stores or scheduler terms a process runs, yet every /metrics still shows them.
 */
import { describe, expect, it, vi } from "vitest";

const starts = vi.hoisted(() => ({ count: 0 }));
vi.mock("prom-client", async (importOriginal) => {
  const real = await importOriginal<typeof import("prom-client")>();
  return {
    ...real,
    collectDefaultMetrics: (...args: Parameters<typeof real.collectDefaultMetrics>) => {
      starts.count++;
      return real.collectDefaultMetrics(...args);
    },
  };
});

const { StoreMetrics } = await import("../../src/kv/status/store-metrics.js");

describe("process collectors", () => {
  it("start once for many stores, and each store's exposition still carries them", async () => {
    const stores = Array.from({ length: 20 }, (_, i) => new StoreMetrics({ storeId: BigInt(i + 1) }));
    const texts = await Promise.all(stores.map((m) => m.text()));
    expect(starts.count, "event-loop monitors and GC observers started (each start is never undone)").toBe(1);
    for (const text of texts) {
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds \S+$/m);
      expect(text).toMatch(/^process_resident_memory_bytes \S+$/m);
      expect(text).toMatch(/^# TYPE tinykv_grpc_requests_total counter$/m);
    }
  });
});
