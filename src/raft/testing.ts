// The testing entry: the Raft core behind RawNode, for unit tests and simulations that need to
// set up or inspect state a RawNode does not show. Production code imports index.ts only.
export * from "./index.js";
export { Raft } from "./raft.js";
export { RaftLog } from "./raft-log.js";
export { Progress, ProgressState, Inflights } from "./progress.js";
export { CampaignType, CAMPAIGN_TRANSFER } from "./raft-types.js";
export { VoteResult, voteResult, committedIndex } from "./quorum.js";
export { raftOf } from "./rawnode.js";
export * as follower from "./raft-follower.js";
export * as leader from "./raft-leader.js";

import type { Raft } from "./raft.js";
import { RawNode as PublicRawNode } from "./rawnode.js";

/** A RawNode whose core is in view (`rn.raft`), for tests that drive one and inspect the other. */
export class InspectableRawNode extends PublicRawNode {
  declare readonly raft: Raft;
}
