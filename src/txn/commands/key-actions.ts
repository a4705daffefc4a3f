/**
 * The per-key transaction actions: prewrite, commit and roll back one key. They are the building
 * blocks of KvPrewrite, KvCommit, KvBatchRollback, KvCheckTxnStatus and KvResolveLock. Each
 * buffers its changes in `txn` (whose startTs is the transaction acted for) and returns a
 * TxnKeyError when it must refuse; the caller decides whether the whole request is dropped.
 */
import type { Mutation } from "../../proto/kvrpcpb.js";
import { Op } from "../../proto/kvrpcpb.js";
import type { TxnKeyError } from "../errors.js";
import type { MvccTxn } from "../mvcc-txn.js";
import { Lock, Write, WriteKind } from "../records.js";

/** What a prewrite of one key needs besides the mutation: the txn's primary and its lock's TTL and kind. */
export interface PrewriteLock {
  primary: Buffer;
  ttl: bigint;
  kind: WriteKind;
}

/**
 * Locks `m.key` for the txn and stages its value. Refused when a newer write exists (write
 * conflict: a lost update otherwise) or another txn holds the lock. Our own lock means a retried
 * prewrite: rewriting the same lock and value is idempotent.
 */
export async function prewriteKey(txn: MvccTxn, m: Mutation, lock: PrewriteLock): Promise<TxnKeyError | undefined> {
  const latest = await txn.mostRecentWrite(m.key);
  if (latest !== undefined && latest.commitTs >= txn.startTs) {
    return {
      kind: "WriteConflict",
      key: m.key,
      startTs: txn.startTs,
      conflictTs: latest.commitTs,
      primary: lock.primary,
    };
  }
  const existing = await txn.getLock(m.key);
  if (existing !== undefined && existing.ts !== txn.startTs) return { kind: "KeyIsLocked", key: m.key, lock: existing };
  if (m.op === Op.Put) txn.putValue(m.key, m.value);
  else txn.deleteValue(m.key); // a Del after a Put of the same key in one request must drop the staged value
  txn.putLock(m.key, new Lock(lock.primary, txn.startTs, lock.ttl, lock.kind));
  return undefined;
}

/**
 * Commits `key` at `commitTs`. Lock present and ours → write record + lock removed. Otherwise the
 * txn's own write record decides: committed already → no-op (a retried commit), rolled back →
 * refused. No record at all: another txn's lock → refused, retryable; nothing → no-op (TinyKV's
 * choice for a commit that never saw its prewrite).
 */
export async function commitKey(txn: MvccTxn, key: Buffer, commitTs: bigint): Promise<TxnKeyError | undefined> {
  const lock = await txn.getLock(key);
  if (lock !== undefined && lock.ts === txn.startTs) {
    txn.putWrite(key, commitTs, new Write(txn.startTs, lock.kind));
    txn.deleteLock(key);
    return undefined;
  }
  const own = await txn.currentWrite(key);
  if (own !== undefined) {
    if (own.write.kind === WriteKind.Rollback) return { kind: "TxnRolledBack", key, startTs: txn.startTs };
    return undefined;
  }
  if (lock !== undefined) return { kind: "TxnLockNotFound", key, startTs: txn.startTs, lockTs: lock.ts };
  return undefined;
}

/** Removes this txn's lock on `key` and the value its prewrite left. */
export function removeOwnLock(txn: MvccTxn, key: Buffer, lock: Lock): void {
  txn.deleteLock(key);
  if (lock.kind === WriteKind.Put) txn.deleteValue(key);
}

/**
 * Writes this txn's rollback record on `key` at start_ts, unless a record of another txn (a commit
 * whose commit_ts equals this start_ts) already sits there: overwriting it would delete committed
 * data, and it already makes a late prewrite of this txn a write conflict (commit_ts >= start_ts).
 * The caller has checked that this txn has no record of its own on the key.
 */
export async function putRollbackRecord(txn: MvccTxn, key: Buffer): Promise<void> {
  if ((await txn.writeAt(key, txn.startTs)) !== undefined) return;
  txn.putWrite(key, txn.startTs, new Write(txn.startTs, WriteKind.Rollback));
}

/**
 * Rolls back `key`: refused if the txn committed it; no-op if already rolled back; otherwise
 * drops the txn's own lock and value (another txn's lock is left alone) and writes a rollback
 * record at start_ts, so a prewrite of this txn arriving late meets a conflict.
 */
export async function rollbackKey(txn: MvccTxn, key: Buffer): Promise<TxnKeyError | undefined> {
  const own = await txn.currentWrite(key);
  if (own !== undefined) {
    if (own.write.kind === WriteKind.Rollback) return undefined;
    return { kind: "AlreadyCommitted", key, startTs: txn.startTs, commitTs: own.commitTs };
  }
  const lock = await txn.getLock(key);
  if (lock !== undefined && lock.ts === txn.startTs) removeOwnLock(txn, key, lock);
  await putRollbackRecord(txn, key);
  return undefined;
}
