/**
 * The one mapping from a transaction action's refusal (src/txn's TxnKeyError) to the wire's
 * KeyError. The texts of `abort` and `retryable` are TinyKV's fields for clients that know only
 * them; a client of ours acts on the structured fields (locked, conflict, txn_not_found).
 */
import { KeyError, TxnNotFound, WriteConflict } from "../../proto/kvrpcpb.js";
import type { TxnKeyError } from "../../txn/index.js";
import { formatKey } from "../../util/bytes.js";

export function keyErrorOf(e: TxnKeyError): KeyError {
  switch (e.kind) {
    case "KeyIsLocked":
      return KeyError.create({ locked: e.lock.info(e.key) });
    case "WriteConflict":
      return KeyError.create({
        conflict: WriteConflict.create({
          startTs: e.startTs,
          conflictTs: e.conflictTs,
          key: e.key,
          primary: e.primary,
        }),
      });
    case "TxnLockNotFound":
      return KeyError.create({
        retryable: `key ${formatKey(e.key)} is locked by txn ${e.lockTs}, not by txn ${e.startTs} being committed`,
      });
    case "TxnRolledBack":
      return KeyError.create({
        abort: `txn ${e.startTs} was rolled back on key ${formatKey(e.key)}; it cannot commit`,
      });
    case "AlreadyCommitted":
      return KeyError.create({
        abort: `txn ${e.startTs} is already committed at ${e.commitTs} on key ${formatKey(e.key)}; it cannot roll back`,
      });
    case "TxnNotFound":
      return KeyError.create({
        txnNotFound: TxnNotFound.create({ startTs: e.startTs, primaryKey: e.key }),
        // For clients that know only TinyKV's KeyError fields: the txn is over, stop.
        abort: `txn ${e.startTs} has no lock on ${formatKey(e.key)}: it is committed or rolled back`,
      });
  }
}
