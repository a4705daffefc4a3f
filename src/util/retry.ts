import type { ErrorContext } from "./errors.js";
import { TinyKvError } from "./errors.js";
import type { Runtime } from "./runtime.js";
import { realRuntime } from "./runtime.js";

/** Sleep that a test or a shutdown can reason about: always resolves, never rejects. */
export function sleep(ms: number, runtime: Runtime = realRuntime): Promise<void> {
  return new Promise((resolve) => runtime.setTimeout(resolve, ms));
}

export class DeadlineExceededError extends TinyKvError {
  constructor(
    what: string,
    readonly deadlineMs: number,
    readonly lastError?: unknown,
    context?: ErrorContext,
  ) {
    super(`${what}: gave up after ${deadlineMs} ms${lastError ? `: ${errorMessage(lastError)}` : ""}`, {
      cause: lastError,
      context,
    });
  }
}

export interface RetryOptions {
  /** What is being retried, for the error message. */
  what: string;
  /** Total time budget in ms. */
  deadlineMs: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Return false to stop retrying on this error and rethrow it at once. */
  retryable?: (err: unknown) => boolean;
  /** Clock, timers and jitter (default: the real ones). */
  runtime?: Runtime;
}

/** Retries `fn` with exponential backoff (jittered) until it succeeds or the deadline passes. */
export async function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const runtime = opts.runtime ?? realRuntime;
  const start = runtime.now();
  let backoff = opts.initialBackoffMs ?? 50;
  const maxBackoff = opts.maxBackoffMs ?? 1000;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      lastError = err;
      if (opts.retryable && !opts.retryable(err)) throw err;
    }
    const left = opts.deadlineMs - (runtime.now() - start);
    if (left <= 0) throw new DeadlineExceededError(opts.what, opts.deadlineMs, lastError);
    await sleep(Math.min(left, backoff * (0.5 + runtime.random() / 2)), runtime);
    backoff = Math.min(backoff * 2, maxBackoff);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
