export * from "./cf.js";
export * from "./engine.js";
export * from "./sim-disk.js";
