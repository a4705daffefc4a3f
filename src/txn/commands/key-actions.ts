/**
 * Commit and roll back one key of a transaction: the building blocks of KvCommit,
 * KvBatchRollback, KvCheckTxnStatus and KvResolveLock. Each buffers its changes in `txn`
 * (whose startTs is the transaction being finished) and answers a KeyError when it must refuse.
 */
import { KeyError } from "../../proto/kvrpcpb.js";
import { formatKey } from "../../util/bytes.js";
import type { MvccTxn } from "../mvcc-txn.js";
import { type Lock, Write, WriteKind } from "../records.js";

/**
 * Commits `key` at `commitTs`. Lock present and ours → write record + lock removed. Otherwise the
 * txn's own write record decides: committed already → no-op (a retried commit), rolled back →
 * abort. No record at all: another txn's lock → retryable; nothing → no-op (TinyKV's choice for a
 * commit that never saw its prewrite).
 */
export async function commitKey(txn: MvccTxn, key: Buffer, commitTs: bigint): Promise<KeyError | undefined> {
  const lock = await txn.getLock(key);
  if (lock !== undefined && lock.ts === txn.startTs) {
    txn.putWrite(key, commitTs, new Write(txn.startTs, lock.kind));
    txn.deleteLock(key);
    return undefined;
  }
  const own = await txn.currentWrite(key);
  if (own !== undefined) {
    if (own.write.kind === WriteKind.Rollback) {
      return KeyError.create({ abort: `txn ${txn.startTs} was rolled back on key ${formatKey(key)}; it cannot commit` });
    }
    return undefined;
  }
  if (lock !== undefined) {
    return KeyError.create({
      retryable: `key ${formatKey(key)} is locked by txn ${lock.ts}, not by txn ${txn.startTs} being committed`,
    });
  }
  return undefined;
}

/** Removes this txn's lock on `key` and the value its prewrite left. */
export function removeOwnLock(txn: MvccTxn, key: Buffer, lock: Lock): void {
  txn.deleteLock(key);
  if (lock.kind === WriteKind.Put) txn.deleteValue(key);
}

/**
 * Rolls back `key`: refuses if the txn committed it (abort); no-op if already rolled back;
 * otherwise drops the txn's own lock and value (another txn's lock is left alone) and writes a
 * rollback record at start_ts, so a prewrite of this txn arriving late meets a conflict.
 */
export async function rollbackKey(txn: MvccTxn, key: Buffer): Promise<KeyError | undefined> {
  const own = await txn.currentWrite(key);
  if (own !== undefined) {
    if (own.write.kind === WriteKind.Rollback) return undefined;
    return KeyError.create({
      abort: `txn ${txn.startTs} is already committed at ${own.commitTs} on key ${formatKey(key)}; it cannot roll back`,
    });
  }
  const lock = await txn.getLock(key);
  if (lock !== undefined && lock.ts === txn.startTs) removeOwnLock(txn, key, lock);
  txn.putWrite(key, txn.startTs, new Write(txn.startTs, WriteKind.Rollback));
  return undefined;
}
