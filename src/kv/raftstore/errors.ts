import { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Peer, Region } from "../../proto/metapb.js";
import { RaftCmdResponse } from "../../proto/raft_cmdpb.js";

/** Builders for the region errors a raftstore answers with (errorpb.Error), TinyKV's mapping. */
export const regionErrors = {
  notLeader(regionId: bigint, leader?: Peer): RegionErrorPb {
    return RegionErrorPb.fromPartial({ message: `peer is not leader for region ${regionId}`, notLeader: { regionId, leader } });
  },
  regionNotFound(regionId: bigint): RegionErrorPb {
    return RegionErrorPb.fromPartial({ message: "region is not found", regionNotFound: { regionId } });
  },
  keyNotInRegion(key: Buffer, region: Region): RegionErrorPb {
    return RegionErrorPb.fromPartial({
      message: `key is not in region ${region.id}`,
      keyNotInRegion: { key, regionId: region.id, startKey: region.startKey, endKey: region.endKey },
    });
  },
  epochNotMatch(message: string, currentRegions: Region[]): RegionErrorPb {
    return RegionErrorPb.fromPartial({ message, epochNotMatch: { currentRegions } });
  },
  staleCommand(message = "stale command"): RegionErrorPb {
    return RegionErrorPb.fromPartial({ message, staleCommand: {} });
  },
  storeNotMatch(requestStoreId: bigint, actualStoreId: bigint): RegionErrorPb {
    return RegionErrorPb.fromPartial({
      message: `store not match: request for store ${requestStoreId}, this is store ${actualStoreId}`,
      storeNotMatch: { requestStoreId, actualStoreId },
    });
  },
  other(message: string): RegionErrorPb {
    return RegionErrorPb.fromPartial({ message });
  },
};

export function errorResponse(error: RegionErrorPb, currentTerm = 0n): RaftCmdResponse {
  return RaftCmdResponse.fromPartial({ header: { error, currentTerm } });
}
