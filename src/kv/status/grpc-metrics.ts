/**
 * Wraps the TinyKv service so every unary rpc is counted and timed, without the handlers knowing:
 * the outcome is read from the answer (a region error, a key error) or the gRPC status.
 */
import type * as grpc from "@grpc/grpc-js";
import type { TinyKvServer } from "../../proto/tinykvpb.js";
import type { RequestOutcome, StoreMetrics } from "./store-metrics.js";

/** The rpcs that are streams, not request/answer pairs: not timed. */
const STREAMS = new Set(["raft", "snapshot", "batchCommands"]);

function outcomeOf(res: unknown): RequestOutcome {
  if (typeof res !== "object" || res === null) return "ok";
  const r = res as { regionError?: unknown; error?: unknown; errors?: unknown[] };
  if (r.regionError) return "region_error";
  if (typeof r.error === "string") return r.error === "" ? "ok" : "error";
  if (r.error || (Array.isArray(r.errors) && r.errors.length > 0)) return "key_error";
  return "ok";
}

/** gRPC method name as the wire spells it (kvGet -> KvGet). */
function wireName(key: string): string {
  return key.charAt(0).toUpperCase() + key.slice(1);
}

/**
 * Wraps in place (and returns the service): BatchCommands serves its sub-requests through the
 * service's own unary handlers, so they are counted and timed per method as unary calls are.
 */
export function instrumentTinyKv(service: TinyKvServer, metrics: StoreMetrics): TinyKvServer {
  const out = service as unknown as Record<string, unknown>;
  for (const [key, handler] of Object.entries(out)) {
    if (STREAMS.has(key) || typeof handler !== "function") continue;
    const method = wireName(key);
    const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
    out[key] = ((call, callback) => {
      const done = metrics.startRequest(method);
      unary(call, (err, res, ...rest) => {
        done(err ? "failed" : outcomeOf(res));
        callback(err, res, ...rest);
      });
    }) satisfies grpc.handleUnaryCall<unknown, unknown>;
  }
  return out as unknown as TinyKvServer;
}
