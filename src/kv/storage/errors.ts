import { TinyKvError } from "../../util/errors.js";

// The region error is one kind for the whole project (src/errors); storage callers know it from here.
export { RegionError, describeRegionError } from "../../errors/region-error.js";

/** A request that is malformed: empty key, unknown CF, value too large, bad range. */
export class InvalidArgumentError extends TinyKvError {}

/**
 * A write whose raft command would be larger than one raft entry may be (TiKV's
 * RaftEntryTooLarge): refused before it is proposed, so nothing is written. The client splits
 * the batch; retrying it unchanged fails the same way.
 */
export class RaftEntryTooLargeError extends InvalidArgumentError {
  constructor(
    readonly regionId: bigint,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `region ${regionId}: the raft command is ${size} bytes, over the raft entry limit of ${limit} bytes ` +
        "(raftEntryMaxSize): split the request into smaller batches",
      { context: { regionId } },
    );
  }
}
