import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import { RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { regionErrorPbs } from "../../errors/region-error.js";

/**
 * The region errors a raftstore answers with, in the wire form its RaftCmdResponse header
 * carries. They are the wire builders of RegionError (the one kind, src/errors), so their messages
 * and fields are defined once for the raftstore, the server and the client.
 */
export const regionErrors = regionErrorPbs;

export function errorResponse(error: RegionErrorPb, currentTerm = 0n): RaftCmdResponse {
  return RaftCmdResponse.fromPartial({ header: { error, currentTerm } });
}
