export * from "./store-metrics.js";
export * from "./grpc-metrics.js";
export * from "./status-server.js";
export * from "./store-source.js";
export * from "./raftstore-metrics.js";
export * from "./replica-read-metrics.js";
