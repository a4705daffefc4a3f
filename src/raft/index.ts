// Public surface of the Raft library (etcd-style, pure: no I/O, no timers).
//
// The application drives a RawNode: tick() on its clock, step() messages from peers, propose()
// on the leader. Whenever hasReady(), it takes ready() and, in this order: installs rd.snapshot
// and appends rd.entries and rd.hardState to stable storage (synced if rd.mustSync); sends
// rd.messages; applies rd.committedEntries (calling applyConfChange for conf-change entries and
// persisting the returned ConfState, which storage.initialState() must return on restart);
// then advance(rd). It may step/tick/propose between ready() and advance(rd).
//
// Bootstrap: a node added to a running group starts with empty storage and no peers and must be
// caught up by a snapshot (whose ConfState tells it the membership), so the initial members
// should start from a snapshot at an index > 0 (TinyKV uses index 5, term 5), not from index 0.
//
// The core (Raft, RaftLog, Progress) stays behind RawNode; tests reach it through testing.ts.
export * from "./eraftpb.js";
export * from "./errors.js";
export { MemoryStorage, emptySnapshot } from "./storage.js";
export type { RaftLogStorage } from "./storage.js";
export { StateType } from "./raft-types.js";
export type { RaftConfig, RaftLogger, SoftState, ReadState } from "./raft-types.js";
export { RawNode, SnapshotStatus, sendableBeforePersist } from "./rawnode.js";
export type { Ready, BasicStatus, Status, PeerProgress } from "./rawnode.js";
export { majority } from "./quorum.js";
export { seededRandom } from "./random.js";
export { newMessage, newEntry } from "./util.js";
