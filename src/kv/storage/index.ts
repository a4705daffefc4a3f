export * from "./storage.js";
export * from "./errors.js";
export * from "./standalone.js";
export * from "./raft-storage.js";
export * from "./raw-keyspace.js";
