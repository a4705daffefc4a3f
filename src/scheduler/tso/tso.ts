import { InvalidRequestError } from "../errors.js";
import { realRuntime } from "../../util/runtime.js";
import type { Clock } from "../core/cluster.js";

export const PHYSICAL_SHIFT_BITS = 18n;
export const MAX_LOGICAL = 1 << 18;

export interface TsoTimestamp {
  physical: number;
  /** The last logical value of the batch; the batch is logical-count+1 ..= logical. */
  logical: number;
}

export function composeTs(t: TsoTimestamp): bigint {
  return (BigInt(t.physical) << PHYSICAL_SHIFT_BITS) | BigInt(t.logical);
}

export function physicalOf(ts: bigint): number {
  return Number(ts >> PHYSICAL_SHIFT_BITS);
}

export interface TsoOptions {
  clock?: Clock;
  /** How far ahead of the issued physical time the persisted high-water mark is kept (3 s, TinyKV). */
  saveWindowMs?: number;
  onPersistError?: (err: unknown) => void;
}

/**
 * The timestamp oracle: (physical ms, logical) pairs, strictly increasing. A physical time is only
 * issued while it is below a high-water mark persisted (synced) beforehand, so after a restart
 * (which starts above the saved mark) no timestamp is ever issued twice or goes backwards.
 */
export class TimestampOracle {
  private physical = 0;
  private logical = 0;
  private highWater = 0;
  private inflight: Promise<void> | undefined;
  private readonly clock: Clock;
  private readonly windowMs: number;

  constructor(
    private readonly persist: (ms: number) => Promise<void>,
    private readonly opts: TsoOptions = {},
  ) {
    this.clock = opts.clock ?? realRuntime.now;
    this.windowMs = opts.saveWindowMs ?? 3000;
  }

  /** Starts after everything a previous incarnation may have issued. */
  async init(lastSavedHighWater: number): Promise<void> {
    this.physical = Math.max(this.clock(), lastSavedHighWater + 1);
    this.logical = 0;
    this.highWater = lastSavedHighWater;
    await this.extend();
  }

  /** The last timestamp issued (or the starting point). */
  last(): TsoTimestamp {
    return { physical: this.physical, logical: this.logical };
  }

  savedHighWater(): number {
    return this.highWater;
  }

  /** Issues `count` consecutive timestamps; returns the last one. */
  async next(count: number): Promise<TsoTimestamp> {
    if (!Number.isInteger(count) || count <= 0 || count >= MAX_LOGICAL) {
      throw new InvalidRequestError(`tso count must be in [1, ${MAX_LOGICAL}), got ${count}`, "invalid_argument");
    }
    for (let attempt = 0; attempt < 1000; attempt++) {
      const now = this.clock();
      if (now > this.physical) {
        this.physical = now;
        this.logical = 0;
      }
      if (this.logical + count >= MAX_LOGICAL) {
        // Logical space of this ms is used up: borrow the next ms (covered by the saved window).
        this.physical += 1;
        this.logical = 0;
        continue;
      }
      if (this.physical >= this.highWater) {
        await this.extend();
        continue;
      }
      this.logical += count;
      const out = { physical: this.physical, logical: this.logical };
      if (this.physical > this.highWater - this.windowMs / 2 && !this.inflight) {
        this.extend().catch((err) => this.opts.onPersistError?.(err));
      }
      return out;
    }
    throw new Error("tso: could not issue a timestamp after 1000 attempts");
  }

  /** Persists a new high-water mark a window ahead of both the clock and the issued time. */
  private async extend(): Promise<void> {
    if (!this.inflight) {
      const mark = Math.max(this.clock(), this.physical) + this.windowMs;
      this.inflight = this.persist(mark)
        .then(() => {
          if (mark > this.highWater) this.highWater = mark;
        })
        .finally(() => {
          this.inflight = undefined;
        });
    }
    await this.inflight;
  }
}
