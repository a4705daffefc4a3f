// The simulation's checkers: pure functions over recorded histories (no I/O, no clock).
export * from "./history.js";
export * from "./linearizability.js";
export * from "./lost-writes.js";
export * from "./bank.js";
export * from "./raft-invariants.js";
