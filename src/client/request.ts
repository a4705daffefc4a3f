/**
 * Sending region-routed requests: locate the region of a key (or group keys by region), send, and
 * on a region error or an unreachable store update the region cache and try again, with jittered
 * exponential backoff, until the operation's deadline.
 */
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { Error as RegionErrorPb } from "../proto/errorpb.js";
import { SchedulerError, SchedulerRpcError } from "../scheduler/client/client.js";
import type { Logger } from "../util/logger.js";
import { DeadlineExceededError, sleep } from "../util/retry.js";
import type { Runtime } from "../util/runtime.js";
import { realRuntime } from "../util/runtime.js";
import {
  KvAnswerTooLargeError,
  KvDeadlineError,
  KvRequestError,
  NoRegionError,
  RegionRequestError,
  StoreUnreachableError,
} from "./errors.js";
import { finishEntryBytes, settleLimited, splitBySize, TXN_BATCHES_IN_FLIGHT } from "./batches.js";
import { BatchStreamBrokenError } from "./batch-stream.js";
import { KvOutcomeUnknownError } from "./outcome.js";
import type { RegionCache, RpcTarget } from "./region-cache.js";

export interface RetryPolicy {
  /** Total budget of one operation, ms. */
  deadlineMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { deadlineMs: 20_000, initialBackoffMs: 10, maxBackoffMs: 1000 };

/** How many retries in a row may skip the sleep (following leader hints / fresh epochs). */
const MAX_FAST_RETRIES = 3;

/** The retry budget of one operation: a deadline, the attempts so far and the next backoff. */
export class Backoff {
  readonly startedAt: number;
  attempts = 0;
  private nextMs: number;
  private fastInRow = 0;

  constructor(
    readonly op: string,
    readonly key: Buffer | undefined,
    readonly policy: RetryPolicy,
    /** Clock, sleeps and jitter. */
    readonly runtime: Runtime = realRuntime,
  ) {
    this.nextMs = policy.initialBackoffMs;
    this.startedAt = runtime.now();
  }

  remainingMs(): number {
    return this.policy.deadlineMs - (this.runtime.now() - this.startedAt);
  }

  private giveUpIfLate(err: unknown): void {
    if (this.remainingMs() <= 0)
      throw new KvDeadlineError(this.op, this.key, this.policy.deadlineMs, this.attempts, err);
  }

  /** Sleeps before the next attempt (jittered, doubling up to the max); throws KvDeadlineError when out of time. */
  async wait(err: unknown): Promise<void> {
    this.attempts++;
    this.fastInRow = 0;
    this.giveUpIfLate(err);
    await sleep(Math.min(this.remainingMs(), this.nextMs * (0.5 + this.runtime.random() / 2)), this.runtime);
    this.nextMs = Math.min(this.nextMs * 2, this.policy.maxBackoffMs);
    this.giveUpIfLate(err);
  }

  /** Retries at once when the error told us where to go (a few times in a row at most), else waits. */
  async retry(err: unknown, fast: boolean): Promise<void> {
    if (fast && this.fastInRow < MAX_FAST_RETRIES) {
      this.attempts++;
      this.fastInRow++;
      this.giveUpIfLate(err);
      return;
    }
    await this.wait(err);
  }
}

const UNREACHABLE = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED]);

/** RESOURCE_EXHAUSTED details of an answer too large for one message: the server's own budget, or gRPC's limit on either side. */
const TOO_LARGE = /answer too large|larger than max/;

/**
 * The pairs a scan asks for per request: halved each time a store answers that a page would
 * not fit one message (KvAnswerTooLargeError), down to one pair, which always fits.
 */
export class ScanPage {
  constructor(private pairs: number) {}

  get size(): number {
    return this.pairs;
  }

  /** After a KvAnswerTooLargeError: whether a smaller page is left to try. */
  shrink(err: unknown): boolean {
    if (!(err instanceof KvAnswerTooLargeError) || this.pairs <= 1) return false;
    this.pairs = Math.max(1, this.pairs >> 1);
    return true;
  }
}

function grpcCode(err: unknown): number | undefined {
  const code = (err as Partial<ServiceError> | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** An UNAVAILABLE failure after the request may have reached the store (KvConnection's `sent`). */
function mayHaveBeenSent(err: unknown): boolean {
  if (err instanceof BatchStreamBrokenError) return err.sent;
  return grpcCode(err) === status.UNAVAILABLE && (err as { sent?: unknown }).sent === true;
}

/** Failures to find a region that may heal by themselves (scheduler restarting, heartbeats not in yet). */
function locateRetryable(err: unknown): boolean {
  if (err instanceof NoRegionError || err instanceof SchedulerError || err instanceof DeadlineExceededError)
    return true;
  return err instanceof SchedulerRpcError && (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED);
}

export interface RegionResponse {
  regionError?: RegionErrorPb | undefined;
}

export class RequestSender {
  constructor(
    readonly cache: RegionCache,
    readonly log: Logger,
  ) {}

  /** The target of `key` (by `route`, default its leader), waiting out scheduler hiccups within the backoff's deadline. */
  async locate(key: Buffer, bo: Backoff, route?: (key: Buffer) => Promise<RpcTarget>): Promise<RpcTarget> {
    for (;;) {
      try {
        return await (route ? route(key) : this.cache.target(key));
      } catch (err) {
        if (!locateRetryable(err)) throw err;
        await bo.wait(err);
      }
    }
  }

  /**
   * Sends one request; undefined means "retry" (the cache was updated and the backoff waited),
   * otherwise the response, free of region errors. `ambiguous` marks a failure after which the
   * request may still apply (StaleCommand, no answer before the rpc deadline).
   */
  async sendOnce<R extends RegionResponse>(
    op: string,
    t: RpcTarget,
    call: (t: RpcTarget) => Promise<R>,
  ): Promise<{ resp?: R; retry?: { err: Error; fast: boolean; ambiguous: boolean } }> {
    let resp: R;
    try {
      resp = await call(t);
    } catch (err) {
      const code = grpcCode(err);
      const details = String((err as Partial<ServiceError>).details ?? "");
      // Not an overloaded store: the same request would fail the same way anywhere.
      if (code === status.RESOURCE_EXHAUSTED && TOO_LARGE.test(details))
        throw new KvAnswerTooLargeError(op, t.addr, `RESOURCE_EXHAUSTED: ${details}`);
      if (code !== undefined && UNREACHABLE.has(code)) {
        this.cache.onSendFail(t);
        return {
          retry: {
            err: new StoreUnreachableError(op, t.addr, code, err),
            fast: false,
            ambiguous: code === status.DEADLINE_EXCEEDED || mayHaveBeenSent(err),
          },
        };
      }
      if (code !== undefined)
        throw new KvRequestError(op, t.addr, `${status[code] ?? code}: ${(err as ServiceError).details}`);
      throw err;
    }
    if (resp.regionError) {
      const fast = this.cache.onRegionError(t, resp.regionError);
      return {
        retry: {
          err: new RegionRequestError(op, t.region.id, t.addr, resp.regionError),
          fast,
          ambiguous: resp.regionError.staleCommand !== undefined,
        },
      };
    }
    this.cache.onSuccess(t);
    return { resp };
  }

  /**
   * One request for the region of `key`, retried on region errors and unreachable stores. With
   * `once` (a write that is not idempotent, as a raw put), a failure after which the request may
   * still apply is not retried: it throws KvOutcomeUnknownError.
   */
  async onKey<R extends RegionResponse>(
    op: string,
    key: Buffer,
    bo: Backoff,
    call: (t: RpcTarget) => Promise<R>,
    opts: { once?: boolean; route?: (key: Buffer) => Promise<RpcTarget> } = {},
  ): Promise<{ resp: R; target: RpcTarget }> {
    for (;;) {
      const target = await this.locate(key, bo, opts.route);
      const r = await this.sendOnce(op, target, call);
      if (r.resp) return { resp: r.resp, target };
      const retry = r.retry!;
      if (opts.once && retry.ambiguous) throw new KvOutcomeUnknownError(op, key, target.addr, retry.err);
      this.log.debug({ op, region_id: target.region.id.toString(), err: retry.err.message }, "retrying");
      await bo.retry(retry.err, retry.fast);
    }
  }

  /** Groups keys by the region that holds them now (order kept within a group). */
  async group(keys: Buffer[], bo: Backoff): Promise<{ target: RpcTarget; keys: Buffer[] }[]> {
    const groups = new Map<bigint, { target: RpcTarget; keys: Buffer[] }>();
    for (const key of keys) {
      const target = await this.locate(key, bo);
      const g = groups.get(target.region.id);
      if (g) g.keys.push(key);
      else groups.set(target.region.id, { target, keys: [key] });
    }
    return [...groups.values()];
  }

  /**
   * Sends `call` for every batch of `keys`: grouped by region, each group split into batches of at
   * most TXN_BATCH_BYTES by `sizeOf` (the key's estimated share of the raft entry) and at most
   * TXN_BATCH_KEYS keys, at most TXN_BATCHES_IN_FLIGHT at once. A batch that meets a region error or an unreachable store is
   * regrouped and sent again; `handle` sees each good response and may return keys to send again
   * after a backoff (e.g. after resolving locks), or throw to fail the operation (after all batches
   * of the round settled).
   */
  async onKeys<R extends RegionResponse>(
    op: string,
    keys: Buffer[],
    bo: Backoff,
    call: (t: RpcTarget, keys: Buffer[]) => Promise<R>,
    handle: (t: RpcTarget, keys: Buffer[], resp: R) => Promise<Buffer[] | undefined> = async () => undefined,
    sizeOf: (key: Buffer) => number = finishEntryBytes,
  ): Promise<void> {
    let pending = keys;
    while (pending.length > 0) {
      const groups = (await this.group(pending, bo)).flatMap((g) =>
        splitBySize(g.keys, sizeOf).map((batch) => ({ target: g.target, keys: batch })),
      );
      const results = await settleLimited(groups, TXN_BATCHES_IN_FLIGHT, async (g) => {
        const r = await this.sendOnce(op, g.target, (t) => call(t, g.keys));
        if (!r.resp) return { again: g.keys, retry: r.retry };
        const again = (await handle(g.target, g.keys, r.resp)) ?? [];
        return {
          again,
          retry:
            again.length > 0
              ? { err: new Error(`${op}: ${again.length} keys to retry`), fast: false, ambiguous: false }
              : undefined,
        };
      });
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      pending = [];
      let lastErr: Error | undefined;
      let fast = true;
      for (const r of results) {
        const v = (
          r as PromiseFulfilledResult<{ again: Buffer[]; retry?: { err: Error; fast: boolean; ambiguous?: boolean } }>
        ).value;
        pending.push(...v.again);
        if (v.retry) {
          lastErr = v.retry.err;
          fast &&= v.retry.fast;
        }
      }
      if (pending.length > 0) await bo.retry(lastErr, fast);
    }
  }
}
