export * from "./storage.js";
export * from "./errors.js";
export * from "./standalone.js";
