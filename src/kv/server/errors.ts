import { TinyKvError } from "../../util/errors.js";
import { errorMessage } from "../../util/retry.js";

/** An rpc this server does not serve (yet, or not in this mode): answered with gRPC status UNIMPLEMENTED. */
export class UnimplementedError extends TinyKvError {
  constructor(
    readonly rpc: string,
    message = `${rpc} is not implemented by tinykv-ts`,
  ) {
    super(message);
  }
}

/** A snapshot stream the store refused or could not take (answered ABORTED: the sender retries). */
export class SnapshotAbortedError extends TinyKvError {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
  }
}
