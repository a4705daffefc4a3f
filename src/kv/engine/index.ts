export * from "./cf.js";
export * from "./engine.js";
export * from "./sim-disk.js";
export * from "./file-layer.js";
export * from "./sim-files.js";
