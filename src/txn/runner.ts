/**
 * Runs one transactional command: latch its keys, take a snapshot *after* the latches are held
 * (so it sees every write of the commands that ran before it on those keys), run the command's
 * logic against an MvccTxn, then apply the buffered writes as one atomic batch.
 */
import type { Context } from "../proto/kvrpcpb.js";
import type { Storage } from "../kv/storage/index.js";
import type { DeliberateBugs } from "../util/deliberate-bugs.js";
import type { TxnBounds } from "./bounds.js";
import { DEFAULT_TXN_BOUNDS } from "./bounds.js";
import type { LatchGuard } from "./latches.js";
import { Latches } from "./latches.js";
import { MvccTxn } from "./mvcc-txn.js";

export class CommandRunner {
  readonly latches = new Latches();

  constructor(
    readonly storage: Storage,
    /** What timestamps and TTLs the commands accept (see bounds.ts). */
    readonly bounds: TxnBounds = DEFAULT_TXN_BOUNDS,
    /** Test-only safety switches turned off (util/deliberate-bugs.ts); never set in production. */
    private readonly deliberateBugs?: DeliberateBugs,
  ) {}

  /**
   * A read-only command: one snapshot, no latches (a snapshot never sees a half-applied batch).
   * At `ts`, which is also what a stale read (`context.stale_read`) needs the serving peer's safe ts to reach.
   */
  async read<T>(ctx: Context | undefined, ts: bigint, fn: (txn: MvccTxn) => Promise<T>): Promise<T> {
    const reader = await this.storage.reader(ctx, { readTs: ts });
    const txn = new MvccTxn(reader, ts);
    try {
      return await fn(txn);
    } finally {
      await txn.close();
      await reader.close();
    }
  }

  /**
   * A command that may write `keys`. Whatever `fn` leaves buffered in the txn is written in one
   * batch before the latches are released; a thrown error writes nothing.
   */
  async write<T>(
    ctx: Context | undefined,
    keys: readonly Uint8Array[],
    ts: bigint,
    fn: (txn: MvccTxn) => Promise<T>,
  ): Promise<T> {
    let guard: LatchGuard | undefined = await this.latches.acquire(keys);
    try {
      const reader = await this.storage.reader(ctx);
      const txn = new MvccTxn(reader, ts);
      let result: T;
      try {
        result = await fn(txn);
      } finally {
        await txn.close();
        await reader.close();
      }
      if (this.deliberateBugs?.has("release-latches-before-apply")) {
        guard.release();
        guard = undefined;
      }
      if (txn.writes.length > 0) await this.storage.write(ctx, [...txn.writes]);
      return result;
    } finally {
      guard?.release();
    }
  }
}
