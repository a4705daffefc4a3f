/** What KvClient.connect takes, and the retry budgets the client derives from it. */
import type { Logger } from "../util/logger.js";
import type { Runtime } from "../util/runtime.js";
import type { TlsPem } from "../util/tls.js";
import type { KvConnectionFactory } from "./kv-connection.js";
import type { RetryPolicy } from "./request.js";
import { DEFAULT_RETRY_POLICY } from "./request.js";

export interface KvClientOptions {
  /** Scheduler address(es): "host:port", comma-separated string or array. */
  scheduler: string | string[];
  /** Total deadline of one operation (all retries included), ms. Default 20 s. */
  timeoutMs?: number;
  /** Deadline of one RPC to a store, ms. Default 3 s. */
  rpcTimeoutMs?: number;
  /** First and largest backoff between retries, ms. Defaults 10 and 1000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Base TTL of a transaction's locks, ms. Default 3000 (client-go's). A lock's TTL is the time
   * since begin() plus this base, grown for transactions of 16 KiB or more (see lock-ttl.ts).
   */
  lockTtlMs?: number;
  /** How often a committing transaction extends its primary lock (KvTxnHeartBeat), ms. Default lockTtlMs / 2. */
  heartbeatIntervalMs?: number;
  /** Time, timers and jitter: deadlines, backoff, lock TTLs, heartbeats. Default: the real runtime. */
  runtime?: Runtime;
  /**
   * How to reach a store's TinyKv service. Default: gRPC, over one BatchCommands stream per store
   * where the store serves it (unary rpcs where it does not, or with `batchCommands: false`).
   */
  connectKv?: KvConnectionFactory;
  /** Use the BatchCommands stream where the store serves it (default true); false: unary rpcs only. */
  batchCommands?: boolean;
  /** How long connect() keeps trying to reach the scheduler, ms. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Mutual TLS to the scheduler and the stores: the CA, this client's certificate and its key as
   * PEM contents (a TlsConfig from TlsConfig.fromFiles fits too). Checked when the client is made:
   * a bad PEM or a certificate from another CA is a TlsConfigError at once. Default plaintext.
   */
  tls?: TlsPem;
  log?: Logger;
}

/** The retry policy of one operation: the options' deadline and backoff, defaults where unset. */
export function retryPolicyOf(opts: Omit<KvClientOptions, "scheduler">): RetryPolicy {
  return {
    deadlineMs: opts.timeoutMs ?? DEFAULT_RETRY_POLICY.deadlineMs,
    initialBackoffMs: opts.backoff?.initialMs ?? DEFAULT_RETRY_POLICY.initialBackoffMs,
    maxBackoffMs: opts.backoff?.maxMs ?? DEFAULT_RETRY_POLICY.maxBackoffMs,
  };
}

/** Inner scheduler retries stay well inside one operation's budget. */
export function schedulerRetryDeadlineMs(policy: RetryPolicy): number {
  return Math.max(100, Math.min(2000, policy.deadlineMs / 4));
}
