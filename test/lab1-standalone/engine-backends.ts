import { Engine, SimDisk } from "../../src/kv/engine/index.js";
import { tempDir } from "../harness/wait.js";

/** Where an engine test's data lives: a temp dir of real LevelDB, or a simulated disk. */
export interface EngineHome {
  open(): Promise<Engine>;
  cleanup(): void;
}

export interface EngineBackend {
  name: string;
  home(): EngineHome;
}

export const ENGINE_BACKENDS: EngineBackend[] = [
  {
    name: "classic-level",
    home() {
      const dir = tempDir();
      return { open: () => Engine.open(dir.path), cleanup: dir.cleanup };
    },
  },
  {
    name: "simulated disk",
    home() {
      const disk = new SimDisk({ name: "engine-test" });
      return { open: () => disk.open("kv"), cleanup: () => undefined };
    },
  },
];
