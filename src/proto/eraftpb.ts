export * from "../raft/eraftpb.js";
