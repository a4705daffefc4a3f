/**
 * Region errors from the storage (as RaftStorage raises them: not leader, epoch not match...)
 * reach the client unchanged in each transactional response's `region_error`, and nothing is written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import type { Modify, Storage, StorageReader } from "../../src/kv/storage/index.js";
import { RegionError, StandaloneStorage } from "../../src/kv/storage/index.js";
import { createTinyKvService, listenTinyKv, RawHandlers, TxnHandlers } from "../../src/kv/server/index.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { Error as RegionErrorPb } from "../../src/proto/errorpb.js";
import { Context, Op } from "../../src/proto/kvrpcpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";
import type * as grpc from "@grpc/grpc-js";
import { b, cfLens } from "./txn-server.js";

const WRONG_REGION = 7n;
const notLeader = RegionErrorPb.create({
  message: "peer is not leader for region 7",
  notLeader: { regionId: WRONG_REGION, leader: { id: 3n, storeId: 2n } },
});

/** A storage that refuses requests routed to region 7 with a NotLeader error, like a follower would. */
class RoutingStorage implements Storage {
  constructor(private readonly inner: StandaloneStorage) {}
  start() {
    return this.inner.start();
  }
  stop() {
    return this.inner.stop();
  }
  private check(ctx: Context | undefined): void {
    if (ctx?.regionId === WRONG_REGION) throw new RegionError(notLeader);
  }
  async write(ctx: Context | undefined, batch: Modify[]): Promise<void> {
    this.check(ctx);
    return this.inner.write(ctx, batch);
  }
  async reader(ctx: Context | undefined): Promise<StorageReader> {
    this.check(ctx);
    return this.inner.reader(ctx);
  }
}

describe("region errors pass through the txn handlers", () => {
  let dir: ReturnType<typeof tempDir>;
  let inner: StandaloneStorage;
  let server: grpc.Server;
  let client: TinyKvRpc;

  beforeAll(async () => {
    dir = tempDir("tinykv-lab4-region-");
    inner = new StandaloneStorage(dir.path);
    const storage = new RoutingStorage(inner);
    await storage.start();
    const svc = createTinyKvService({
      raw: new RawHandlers(storage),
      txn: new TxnHandlers(storage),
      log: silentLogger,
    });
    const listening = await listenTinyKv(svc, "127.0.0.1:0");
    server = listening.server;
    client = new TinyKvRpc(`127.0.0.1:${listening.port}`);
    // One committed-looking value, so that the rpcs below would have something to do.
    await inner.write(undefined, [{ kind: "put", cf: CF_DEFAULT, key: b(1), value: b(1) }]);
  });
  afterAll(async () => {
    client.close();
    server.forceShutdown();
    await inner.stop();
    dir.cleanup();
  });

  const context = Context.create({ regionId: WRONG_REGION });

  it("every txn rpc answers the storage's region error unchanged", async () => {
    const responses = [
      await client.kvGet({ context, key: b(1), version: 10n }),
      await client.kvScan({ context, startKey: b(), limit: 10, version: 10n }),
      await client.kvPrewrite({
        context,
        startVersion: 10n,
        primaryLock: b(1),
        mutations: [{ op: Op.Put, key: b(1), value: b(2) }],
      }),
      await client.kvCommit({ context, startVersion: 10n, commitVersion: 11n, keys: [b(1)] }),
      await client.kvCheckTxnStatus({ context, primaryKey: b(1), lockTs: 10n, currentTs: 12n }),
      await client.kvBatchRollback({ context, startVersion: 10n, keys: [b(1)] }),
      await client.kvResolveLock({ context, startVersion: 10n, commitVersion: 0n }),
      await client.kvTxnHeartBeat({ context, primaryLock: b(1), startVersion: 10n, adviseLockTtl: 100n }),
    ];
    for (const res of responses) expect(res.regionError).toEqual(notLeader);
    expect(await cfLens(inner)).toEqual([1, 0, 0]);
  });

  it("the same rpcs on the right region work", async () => {
    const res = await client.kvPrewrite({
      startVersion: 10n,
      primaryLock: b(2),
      mutations: [{ op: Op.Put, key: b(2), value: b(2) }],
    });
    expect(res.regionError).toBeUndefined();
    expect(res.errors).toEqual([]);
  });
});
