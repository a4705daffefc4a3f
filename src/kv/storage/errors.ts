import { Error as RegionErrorPb } from "../../proto/errorpb.js";

/**
 * A routing or leadership error that the client fixes by retrying elsewhere: carried on the
 * wire as `errorpb.Error` in a response's `region_error`.
 */
export class RegionError extends Error {
  constructor(readonly pb: RegionErrorPb) {
    super(pb.message || describeRegionError(pb));
    this.name = "RegionError";
  }
}

export function describeRegionError(pb: RegionErrorPb): string {
  if (pb.notLeader) return `region ${pb.notLeader.regionId}: not leader (leader hint: ${pb.notLeader.leader?.id ?? "unknown"})`;
  if (pb.regionNotFound) return `region ${pb.regionNotFound.regionId} not found`;
  if (pb.keyNotInRegion) return `key not in region ${pb.keyNotInRegion.regionId}`;
  if (pb.epochNotMatch) return "region epoch does not match";
  if (pb.staleCommand) return "stale command";
  if (pb.storeNotMatch) return `store not match: request for store ${pb.storeNotMatch.requestStoreId}, this is ${pb.storeNotMatch.actualStoreId}`;
  return "region error";
}

/** A request that is malformed: empty key, unknown CF, value too large, bad range. */
export class InvalidArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidArgumentError";
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
    );
    this.name = "RaftEntryTooLargeError";
  }
}
