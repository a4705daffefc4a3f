import { join } from "node:path";
import { DEFAULT_RAFTSTORE_CONFIG } from "../kv/raftstore/index.js";
import { TtlSweeper } from "../kv/server/raw-ttl.js";
import { StandaloneStorage } from "../kv/storage/index.js";
import {
  BatchCommandsStreams,
  createTinyKvService,
  listenTinyKv,
  RawHandlers,
  shutdownGracefully,
  TxnHandlers,
} from "../kv/server/index.js";
import { instrumentTinyKv, startStoreStatusServer, StoreMetrics } from "../kv/status/index.js";
import type { Logger } from "../util/logger.js";
import { realRuntime } from "../util/runtime.js";
import type { TlsConfig } from "../util/tls.js";

export interface RunningNode {
  port: number;
  /** Where /metrics and /status are served, if anywhere. */
  statusAddr?: string;
  stop(): Promise<void>;
}

export interface StandaloneNode extends RunningNode {
  storage: StandaloneStorage;
  /** Its BatchCommands streams (their figures: `stats()`). */
  batchStreams: BatchCommandsStreams;
}

/** Builds and starts a standalone store: one LevelDB under `<path>/kv`, the TinyKv service on `addr`. */
export async function startStandaloneServer(opts: {
  path: string;
  addr: string;
  log: Logger;
  statusAddr?: string;
  /** Mutual TLS on the gRPC and status listeners. */
  tls?: TlsConfig;
  /** How often expired raw keys are looked for (default: the raftstore's rawTtlCheckTickMs). */
  rawTtlCheckTickMs?: number;
}): Promise<StandaloneNode> {
  const storage = new StandaloneStorage(join(opts.path, "kv"));
  await storage.start();
  try {
    const metrics = new StoreMetrics({});
    const batchStreams = new BatchCommandsStreams(opts.log);
    const raw = new RawHandlers(storage, realRuntime);
    // The raftstore's TTL sweep settings; standalone has no config file of its own.
    const ttlSweeper = new TtlSweeper({
      keyspace: raw.keyspace,
      targets: () => [undefined],
      runtime: realRuntime,
      intervalMs: opts.rawTtlCheckTickMs ?? DEFAULT_RAFTSTORE_CONFIG.rawTtlCheckTickMs,
      batch: DEFAULT_RAFTSTORE_CONFIG.rawTtlCheckBatch,
      log: opts.log,
    });
    const service = instrumentTinyKv(
      createTinyKvService({
        raw,
        txn: new TxnHandlers(storage),
        batchStreams,
        log: opts.log,
      }),
      metrics,
    );
    const { server, port } = await listenTinyKv(service, opts.addr, { tls: opts.tls, log: opts.log });
    ttlSweeper.start();
    const status = opts.statusAddr
      ? await startStoreStatusServer(opts.statusAddr, metrics, () => ({ mode: "standalone", addr: opts.addr }), {
          tls: opts.tls,
          log: opts.log,
        }).catch(async (err: unknown) => {
          await shutdownGracefully(server, realRuntime);
          await ttlSweeper.stop();
          throw err;
        })
      : undefined;
    return {
      port,
      storage,
      batchStreams,
      statusAddr: status?.addr,
      async stop() {
        await status?.close();
        batchStreams.closeAll();
        await shutdownGracefully(server, realRuntime);
        await ttlSweeper.stop();
        await storage.stop();
      },
    };
  } catch (err) {
    await storage.stop();
    throw err;
  }
}
