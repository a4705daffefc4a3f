// Per-call read options (issue 18): where a read may be served and how fresh it must be.
// - replicaRead: any peer of the region serves it, still linearizable (the follower asks the
//   leader for a read index first). The client spreads such reads over the followers.
// - staleRead (transactional reads only): any peer whose safe ts reaches the read ts serves it
//   without asking the leader; one that is not there yet answers DataIsNotReady and the read is
//   sent to the leader as an ordinary read at the same ts.
import type { RegionCache, RpcTarget } from "./region-cache.js";
import type { RegionResponse } from "./request.js";

/** A TSO timestamp is physical ms << 18 | logical. */
const TSO_PHYSICAL_SHIFT = 18n;

/** A stale read at a timestamp, or at the TSO's now minus a bound on staleness. */
export type StaleRead = { ts: bigint } | { maxStalenessMs: number };

export interface ReadOptions {
  replicaRead?: boolean;
  staleRead?: StaleRead;
}

export class InvalidReadOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidReadOptionError";
  }
}

/** The read ts of a stale read: `ts`, or a fresh TSO timestamp moved back by `maxStalenessMs`. */
export async function staleReadTs(stale: StaleRead, tso: () => Promise<bigint>): Promise<bigint> {
  if ("ts" in stale) {
    if (stale.ts <= 0n) throw new InvalidReadOptionError(`staleRead.ts must be a positive timestamp, got ${stale.ts}`);
    return stale.ts;
  }
  const ms = stale.maxStalenessMs;
  if (!Number.isFinite(ms) || ms < 0)
    throw new InvalidReadOptionError(`staleRead.maxStalenessMs must be a non-negative number, got ${ms}`);
  const ts = (await tso()) - (BigInt(Math.floor(ms)) << TSO_PHYSICAL_SHIFT);
  if (ts <= 0n) throw new InvalidReadOptionError(`staleRead.maxStalenessMs ${ms} reaches before the TSO's epoch`);
  return ts;
}

/** Raw keys have no timestamps: a stale raw read is refused before anything is sent. */
export function rawReadOptions(opts: ReadOptions): { replica: boolean } {
  if (opts.staleRead)
    throw new InvalidReadOptionError(
      "staleRead is for transactional reads: raw keys have no timestamps (use replicaRead)",
    );
  return { replica: opts.replicaRead === true };
}

/**
 * How one read operation is routed: to the leader (default), to the followers in turn with
 * replica_read, or with stale_read until a replica answers DataIsNotReady, then to the leader
 * as an ordinary read for the rest of the operation.
 */
export class ReadRouting {
  private atLeader = false;

  constructor(
    private readonly cache: RegionCache,
    private readonly mode: { replica?: boolean; stale?: boolean },
  ) {}

  /** The target of the next attempt for `key`; undefined: the sender's default (the leader). */
  get route(): ((key: Buffer) => Promise<RpcTarget>) | undefined {
    if (!this.mode.replica && !this.mode.stale) return undefined;
    return (key) =>
      this.atLeader
        ? this.cache.target(key)
        : this.cache.replicaTarget(key, {
            replicaRead: this.mode.replica === true && !this.mode.stale,
            staleRead: this.mode.stale === true,
          });
  }

  /** Wraps an rpc: a DataIsNotReady answer sends the next attempts to the leader. */
  watch<R extends RegionResponse>(call: (t: RpcTarget) => Promise<R>): (t: RpcTarget) => Promise<R> {
    if (!this.mode.stale) return call;
    return async (t) => {
      const resp = await call(t);
      if (resp.regionError?.dataIsNotReady) this.atLeader = true;
      return resp;
    };
  }
}
