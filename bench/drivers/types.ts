/**
 * What the load generator needs from a store. One driver per worker thread; it owns its own gRPC
 * channels. Every call has a deadline and a bounded number of internal retries, so no call can
 * hang or loop past the benchmark's end.
 */
export interface Driver {
  readonly name: string;
  put(key: Buffer, value: Buffer): Promise<void>;
  /** Resolves to the value, or undefined when the key does not exist. */
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Reads up to `limit` pairs starting at `start` (inclusive); resolves to the number read. */
  scan(start: Buffer, limit: number): Promise<number>;
  /** Transactional read-modify-write of one key (snapshot read, then write at a new commit ts). */
  rmw?(key: Buffer, value: Buffer): Promise<void>;
  /** Writes the pairs in as few requests as the store allows (the `load` workload). */
  batchPut?(pairs: { key: Buffer; value: Buffer }[]): Promise<void>;
  close(): Promise<void> | void;
}

export interface DriverOptions {
  endpoints: string[];
  /** gRPC channels (separate TCP connections) per endpoint, per worker. */
  channels: number;
  /** Deadline of one request, including the driver's internal retries. */
  timeoutMs: number;
  /** Upper bound of the key space (keys sort below it); used as the end of etcd range scans. */
  keyPrefix: string;
}

/** Thrown for an application-level failure (a conflict, a region error after retries, ...). */
export class BenchOpError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
    this.name = "BenchOpError";
  }
}

/** Options shared by all grpc-js channels of both drivers: one TCP connection per channel. */
export const CHANNEL_OPTIONS = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
  "grpc.keepalive_time_ms": 60_000,
} as const;

/** A short, stable error label for the error table (gRPC status name or error class + message head). */
export function errorLabel(err: unknown): string {
  if (err instanceof BenchOpError) return err.kind;
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code === "number" && typeof e.details === "string") {
    const names: Record<number, string> = {
      1: "CANCELLED",
      2: "UNKNOWN",
      4: "DEADLINE_EXCEEDED",
      8: "RESOURCE_EXHAUSTED",
      13: "INTERNAL",
      14: "UNAVAILABLE",
    };
    return `grpc ${names[e.code] ?? e.code}: ${String(e.details).slice(0, 60)}`;
  }
  // Library errors: class name (+ reason), without per-key details, so the table groups them.
  const name = (err as Error)?.name;
  if (name && name !== "Error")
    return (err as { reason?: string }).reason ? `${name}: ${(err as { reason?: string }).reason}` : name;
  return String(e?.message ?? err)
    .replace(/[0-9a-f]{6,}/gi, "#")
    .slice(0, 80);
}
