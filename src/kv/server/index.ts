export * from "./errors.js";
export * from "./grpc-status.js";
export * from "./key-error.js";
export * from "./limits.js";
export * from "./raw.js";
export * from "./txn.js";
export * from "./service.js";
export * from "./server.js";
