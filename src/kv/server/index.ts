export * from "./errors.js";
export * from "./limits.js";
export * from "./raw.js";
export * from "./txn.js";
export * from "./service.js";
export * from "./server.js";
