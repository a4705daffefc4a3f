import type { CfName, CfCursor } from "../engine/index.js";
import type { Context } from "../../proto/kvrpcpb.js";

/** One change of a write batch. */
export type Modify =
  | { kind: "put"; cf: CfName; key: Buffer; value: Buffer }
  | { kind: "delete"; cf: CfName; key: Buffer }
  /** Every key of `cf` in [start, end) (empty end: no end), in the region the write is routed to. */
  | { kind: "deleteRange"; cf: CfName; start: Buffer; end: Buffer };

/**
 * A consistent point-in-time view of the data a request may read. For RaftStorage it is
 * bound to one region: reads outside the region's range are refused.
 */
export interface StorageReader {
  getCF(cf: CfName, key: Uint8Array): Promise<Buffer | undefined>;
  /**
   * A cursor over the CF, limited to the reader's range; call seek() before reading. With
   * `reverse` it walks downward (seek(k) lands on the last key below k: CfCursor.seek).
   */
  iterCF(cf: CfName, opts?: { reverse?: boolean }): CfCursor;
  close(): Promise<void>;
}

/** What a reader is for, beyond its context. */
export interface ReaderOptions {
  /** The MVCC timestamp the reader reads at: a stale read (`context.stale_read`) needs one. */
  readTs?: bigint;
}

/**
 * A write that applies only if `cf`/`key` holds `expected` (undefined: nothing), decided
 * atomically with respect to every other write of the key (raw CAS, the TTL sweep). With
 * `expiry`, a value whose expiry (stored under the key in `expiry.cf`) is at or before
 * `expiry.nowMs` counts as absent.
 */
export interface ConditionalWrite {
  cf: CfName;
  key: Buffer;
  expected: Buffer | undefined;
  expiry?: { cf: CfName; nowMs: number };
  writes: Modify[];
}

/** Whether a conditional write applied, and the value its comparison saw. */
export interface ConditionalOutcome {
  succeed: boolean;
  previous: Buffer | undefined;
}

/**
 * Where the KV service and the transaction layer keep data. `write` is atomic: all of the
 * batch or none of it. Errors about routing (wrong region, not leader, stale epoch) are
 * thrown as `RegionError` and end up in the response's `region_error`.
 */
export interface Storage {
  start(): Promise<void>;
  stop(): Promise<void>;
  write(ctx: Context | undefined, batch: Modify[]): Promise<void>;
  /** A snapshot; `context.replica_read` lets a follower serve it, `context.stale_read` too at `opts.readTs`. */
  reader(ctx: Context | undefined, opts?: ReaderOptions): Promise<StorageReader>;
  /** Every real storage has it; a test double that never serves raw CAS or TTL may leave it out. */
  conditionalWrite?(ctx: Context | undefined, write: ConditionalWrite): Promise<ConditionalOutcome>;
}
