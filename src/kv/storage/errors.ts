import { TinyKvError } from "../../util/errors.js";

// The region error is one kind for the whole project (src/errors); storage callers know it from here.
export { RegionError, describeRegionError } from "../../errors/region-error.js";

/** A request that is malformed: empty key, unknown CF, value too large, bad range. */
export class InvalidArgumentError extends TinyKvError {}

/**
 * A scan whose answer would pass the byte budget of one gRPC message (gRPC RESOURCE_EXHAUSTED,
 * as gRPC answers a message over its limit): refused whole, before it is built past the budget,
 * since a shorter page would read as the end of the region. The client asks again for fewer pairs.
 */
export class AnswerTooLargeError extends TinyKvError {
  constructor(
    readonly rpc: string,
    readonly pairs: number,
    readonly limitBytes: number,
  ) {
    super(
      `${rpc} answer too large: its first ${pairs} pairs already pass ${limitBytes} bytes; ask for fewer (limit < ${pairs})`,
      { answer: true },
    );
  }
}

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
