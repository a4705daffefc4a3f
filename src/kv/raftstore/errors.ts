import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Peer, Region } from "../../proto/metapb.js";
import { RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { RegionError } from "../../errors/region-error.js";

/**
 * The region errors a raftstore answers with, in the wire form its RaftCmdResponse header
 * carries. They are RegionError's builders (the one kind, src/errors), so their messages and
 * fields are defined once for the raftstore, the server and the client.
 */
export const regionErrors = {
  notLeader: (regionId: bigint, leader?: Peer): RegionErrorPb => RegionError.notLeader(regionId, leader).toPb(),
  regionNotFound: (regionId: bigint): RegionErrorPb => RegionError.regionNotFound(regionId).toPb(),
  keyNotInRegion: (key: Buffer, region: Region): RegionErrorPb => RegionError.keyNotInRegion(key, region).toPb(),
  epochNotMatch: (message: string, currentRegions: Region[]): RegionErrorPb =>
    RegionError.epochNotMatch(message, currentRegions).toPb(),
  staleCommand: (message?: string): RegionErrorPb => RegionError.staleCommand(message).toPb(),
  storeNotMatch: (requestStoreId: bigint, actualStoreId: bigint): RegionErrorPb =>
    RegionError.storeNotMatch(requestStoreId, actualStoreId).toPb(),
  other: (message: string): RegionErrorPb => RegionError.other(message).toPb(),
};

export function errorResponse(error: RegionErrorPb, currentTerm = 0n): RaftCmdResponse {
  return RaftCmdResponse.fromPartial({ header: { error, currentTerm } });
}
