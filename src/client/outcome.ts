import { formatKey } from "../util/bytes.js";
import { errorMessage } from "../util/retry.js";

/**
 * A write was sent and may or may not have been applied: the store answered StaleCommand (the
 * command is in a raft log and may still commit under another leader) or gave no answer before
 * the rpc deadline. The client does not send it again, because a late copy of it could land
 * after a newer write and undo it; a later read tells what happened.
 */
export class KvOutcomeUnknownError extends Error {
  constructor(
    readonly op: string,
    readonly key: Buffer,
    readonly storeAddr: string,
    cause: unknown,
  ) {
    super(`${op} ${formatKey(key)} at ${storeAddr}: outcome unknown, not retried: ${errorMessage(cause)}`, { cause });
    this.name = "KvOutcomeUnknownError";
  }
}
