// Public surface of the Raft library.
export * from "./eraftpb.js";
export * from "./errors.js";
export { MemoryStorage, emptySnapshot } from "./storage.js";
export type { RaftStorage } from "./storage.js";
export { Raft } from "./raft.js";
export { StateType, CampaignType, VoteResult, CAMPAIGN_TRANSFER } from "./raft-types.js";
export type { RaftConfig, SoftState, ReadState } from "./raft-types.js";
export { RawNode, SnapshotStatus } from "./rawnode.js";
export type { Ready, Status, PeerProgress } from "./rawnode.js";
export { Progress, ProgressState, Inflights } from "./progress.js";
export { RaftLog } from "./raft-log.js";
export { seededRandom } from "./random.js";
export { newMessage, newEntry } from "./util.js";
