export * from "./transport.js";
export * from "./errors.js";
export * from "./rng.js";
export * from "./filters.js";
export * from "./snapshot-chunks.js";
export * from "./static-resolver.js";
export * from "./memory-transport.js";
export * from "./grpc-transport.js";
