/**
 * Why a transaction action refused a key, as a value (TiKV's txn errors): the actions in
 * commands/key-actions.ts return them, the commands pass them up, and the server maps each to
 * the wire's KeyError in one place (kv/server/key-error.ts). Each case carries the key and the
 * timestamps the refusal is about, so the wire form and a log line can be built from it alone.
 */
import type { Lock } from "./records.js";

export type TxnKeyError =
  /** Another txn holds a lock on the key (prewrite, or a read at or after the lock's start_ts). */
  | { kind: "KeyIsLocked"; key: Buffer; lock: Lock }
  /** A write (or this txn's rollback) was recorded at or after start_ts: prewriting would lose an update. */
  | { kind: "WriteConflict"; key: Buffer; startTs: bigint; conflictTs: bigint; primary: Buffer }
  /** Commit found another txn's lock where this txn's should be: its own lock is gone (retry after resolving). */
  | { kind: "TxnLockNotFound"; key: Buffer; startTs: bigint; lockTs: bigint }
  /** Commit of a txn that was rolled back on this key: it can never commit. */
  | { kind: "TxnRolledBack"; key: Buffer; startTs: bigint }
  /** Rollback of a txn that committed this key: rolling back would tear it. */
  | { kind: "AlreadyCommitted"; key: Buffer; startTs: bigint; commitTs: bigint }
  /** Heartbeat of a txn with no lock on its primary: it is committed or rolled back already. */
  | { kind: "TxnNotFound"; key: Buffer; startTs: bigint };

export type TxnKeyErrorKind = TxnKeyError["kind"];

/** Answer of a command over a list of keys: the first key refused, if any (then nothing of the request was written). */
export interface KeysResult {
  error?: TxnKeyError;
}
