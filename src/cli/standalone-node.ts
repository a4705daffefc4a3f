import { join } from "node:path";
import { StandaloneStorage } from "../kv/storage/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, shutdownGracefully, TxnHandlers } from "../kv/server/index.js";
import type { Logger } from "../util/logger.js";
import { realRuntime } from "../util/runtime.js";

export interface RunningNode {
  port: number;
  stop(): Promise<void>;
}

export interface StandaloneNode extends RunningNode {
  storage: StandaloneStorage;
}

/** Builds and starts a standalone store: one LevelDB under `<path>/kv`, the TinyKv service on `addr`. */
export async function startStandaloneServer(opts: { path: string; addr: string; log: Logger }): Promise<StandaloneNode> {
  const storage = new StandaloneStorage(join(opts.path, "kv"));
  await storage.start();
  try {
    const service = createTinyKvService({ raw: new RawHandlers(storage), txn: new TxnHandlers(storage), log: opts.log });
    const { server, port } = await listenTinyKv(service, opts.addr);
    return {
      port,
      storage,
      async stop() {
        await shutdownGracefully(server, realRuntime);
        await storage.stop();
      },
    };
  } catch (err) {
    await storage.stop();
    throw err;
  }
}
