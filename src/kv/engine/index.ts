export * from "./cf.js";
export * from "./engine.js";
