export * from "./feed.js";
export * from "./hub.js";
export * from "./rows.js";
export * from "./service.js";
