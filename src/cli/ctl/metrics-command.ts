// `tinykv-ctl metrics`: a store's /metrics in short (the work is in ../ctl-metrics.ts).
import { storeMetricsLines } from "../ctl-metrics.js";
import type { CtlCommand } from "./command.js";
import { arity, helpEntry } from "./command.js";

export const metricsCommand: CtlCommand = {
  name: "metrics",
  help: helpEntry(
    "metrics <store-id|host:port>",
    "a store's /metrics in short: requests by method and outcome,",
    "p99 latency, regions, leaders (host:port: its status address)",
  ),
  async run(ctx, args) {
    arity(args, 1, 1, "metrics <store-id|host:port>");
    const lines = await storeMetricsLines(args[0]!, {
      stores: async () => (await ctx.kv()).getAllStores(),
      timeoutMs: ctx.timeoutMs,
      tls: ctx.tls,
    });
    for (const line of lines) ctx.out(line);
  },
};
