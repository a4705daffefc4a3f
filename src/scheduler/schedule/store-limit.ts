import type { Clock } from "../core/cluster.js";

export interface StoreLimitOptions {
  /** Peers a store may gain (and, separately, lose) per minute (PD's store limit). */
  perMinute?: number;
  /** Tokens a quiet store accumulates: how many operators may start at once. */
  burst?: number;
}

export type StoreLimitKind = "add-peer" | "remove-peer";

interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * A token bucket per store and direction: every operator that adds a peer to a store takes one
 * "add-peer" token of it, every removal one "remove-peer" token. Time comes from the injected clock.
 */
export class StoreLimiter {
  readonly perMinute: number;
  readonly burst: number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    opts: StoreLimitOptions = {},
  ) {
    this.perMinute = opts.perMinute ?? 120;
    this.burst = opts.burst ?? 10;
  }

  available(storeId: bigint, kind: StoreLimitKind): number {
    return this.refill(storeId, kind).tokens;
  }

  /**
   * Takes one token. Repairs (replica checker) take theirs even from an empty bucket, which stays
   * at zero: they never wait for balance, but balance waits for them.
   */
  take(storeId: bigint, kind: StoreLimitKind): void {
    const b = this.refill(storeId, kind);
    b.tokens = Math.max(0, b.tokens - 1);
  }

  private refill(storeId: bigint, kind: StoreLimitKind): Bucket {
    const key = `${storeId}/${kind}`;
    const now = this.clock();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, atMs: now };
      this.buckets.set(key, b);
    }
    const elapsed = Math.max(0, now - b.atMs);
    b.tokens = Math.min(this.burst, b.tokens + (elapsed * this.perMinute) / 60_000);
    b.atMs = now;
    return b;
  }
}
