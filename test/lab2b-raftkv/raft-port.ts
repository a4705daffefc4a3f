import type { ListenOptions, TinyKvListener } from "../../src/kv/server/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import type { StandaloneStorage } from "../../src/kv/storage/index.js";
import type { RaftMessageSink } from "../../src/kv/transport/index.js";
import { silentLogger } from "../../src/util/logger.js";

/**
 * A store's port for transport tests: the TinyKv service over `storage`, raft going to `sink`
 * (the gRPC `Raft` rpc always; raft over TCP too unless `opts.raftSink` is set to undefined).
 * `stop` shuts the server and its port down.
 */
export async function listenRaftPort(
  storage: StandaloneStorage,
  sink: RaftMessageSink,
  opts: ListenOptions = {},
): Promise<TinyKvListener & { stop(): Promise<void> }> {
  const svc = createTinyKvService({
    raw: new RawHandlers(storage),
    txn: new TxnHandlers(storage),
    raft: sink,
    log: silentLogger,
  });
  const listening = await listenTinyKv(svc, "127.0.0.1:0", { raftSink: sink, ...opts });
  return {
    ...listening,
    async stop() {
      listening.server.forceShutdown();
      await listening.closePort();
    },
  };
}
