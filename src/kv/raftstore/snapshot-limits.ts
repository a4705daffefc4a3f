/**
 * Limits on snapshot streams a store receives. Any network client can open the `Snapshot` rpc,
 * so how many run at once and how many bytes one may declare are bounded; a refused receive
 * leaves no file behind (SnapManager.receive deletes it).
 */
import { TinyKvError } from "../../util/errors.js";

/** A snapshot stream refused for a limit of this store: answered RESOURCE_EXHAUSTED, the sender retries later. */
export class SnapshotLimitError extends TinyKvError {
  constructor(
    readonly limit: "concurrentRecvSnapLimit" | "snapRecvMaxBytes",
    readonly value: number,
    readonly max: number,
    what: string,
  ) {
    super(`snapshot refused: ${what} ${value}, over this store's ${limit} of ${max}`, { answer: true });
  }
}
