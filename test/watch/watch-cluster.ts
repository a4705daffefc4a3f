// A scheduler and three tinykv stores in this process, over real gRPC on loopback (startRaftNode,
// the tinykv-server wiring), and a KvClient: what the watch tests run against.
import { join } from "node:path";
import { startRaftNode } from "../../src/cli/raft-node.js";
import type { RunningNode } from "../../src/cli/standalone-node.js";
import { KvClient } from "../../src/client/client.js";
import type { WatchChange, WatchEvent } from "../../src/client/watch-merge.js";
import type { RaftstoreConfig } from "../../src/kv/raftstore/index.js";
import { TEST_RAFTSTORE_CONFIG } from "../../src/kv/raftstore/index.js";
import type { FeedOptions } from "../../src/kv/watch/index.js";
import type { SchedulerServer } from "../../src/scheduler/server/server.js";
import type { Logger } from "../../src/util/logger.js";
import { createLogger, silentLogger } from "../../src/util/logger.js";

/** WATCH_LOG=debug shows the stores' and the client's logs. */
const log: Logger = process.env.WATCH_LOG ? createLogger(process.env.WATCH_LOG) : silentLogger;
import { startScheduler } from "../lab3c-scheduler/helpers.js";
import { freePort } from "../harness/ports.js";
import { tempDir, waitFor } from "../harness/wait.js";

export interface WatchClusterOptions {
  config?: Partial<RaftstoreConfig>;
  watch?: Partial<FeedOptions>;
}

export class WatchCluster {
  readonly dir = tempDir("tinykv-watch-");
  scheduler: SchedulerServer | undefined;
  readonly nodes = new Map<number, RunningNode & { storeId: bigint }>();
  readonly addrs = new Map<number, string>();
  client: KvClient | undefined;

  constructor(private readonly opts: WatchClusterOptions = {}) {}

  async start(stores = 3): Promise<KvClient> {
    this.scheduler = await startScheduler(join(this.dir.path, "scheduler"));
    // The first store bootstraps the cluster; the others join once it has.
    for (let n = 1; n <= stores; n++) await this.startStore(n);
    this.client = await KvClient.connect({ scheduler: this.scheduler.addr, timeoutMs: 15_000, log });
    const kv = this.client;
    await waitFor(
      async () => {
        const regions = await kv.getAllRegions();
        return regions.length > 0 && regions.every((r) => r.region.peers.length === stores && r.leader);
      },
      { timeoutMs: 15_000, message: `the first region never got ${stores} replicas and a leader` },
    );
    return kv;
  }

  async startStore(n: number): Promise<void> {
    const addr = this.addrs.get(n) ?? `127.0.0.1:${await freePort()}`;
    this.addrs.set(n, addr);
    const node = await startRaftNode({
      path: join(this.dir.path, `store${n}`),
      addr,
      scheduler: [this.scheduler!.addr],
      config: { ...TEST_RAFTSTORE_CONFIG, ...this.opts.config },
      log: log.child({ store: n }),
      watch: this.opts.watch,
    });
    this.nodes.set(n, node);
  }

  async stopStore(n: number): Promise<void> {
    const node = this.nodes.get(n);
    this.nodes.delete(n);
    await node?.stop();
  }

  /** The store number whose node leads the region holding `key`. */
  async leaderOf(key: Buffer): Promise<number | undefined> {
    const regions = await this.client!.getAllRegions();
    const r = regions.find(
      ({ region }) =>
        Buffer.compare(region.startKey, key) <= 0 &&
        (region.endKey.length === 0 || Buffer.compare(key, region.endKey) < 0),
    );
    const storeId = r?.leader?.storeId;
    for (const [n, node] of this.nodes) if (node.storeId === storeId) return n;
    return undefined;
  }

  async shutdown(): Promise<void> {
    this.client?.close();
    for (const n of [...this.nodes.keys()]) await this.stopStore(n);
    await this.scheduler?.stop();
    this.dir.cleanup();
  }
}

/** A committed change as the writer knows it, in the watch's order. */
export interface Written {
  key: string;
  value: string | undefined;
  commitTs: bigint;
}

export function byPosition(a: Written, b: Written): number {
  if (a.commitTs !== b.commitTs) return a.commitTs < b.commitTs ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export function writtenOf(ev: WatchChange): Written {
  return { key: ev.key.toString(), value: ev.type === "put" ? ev.value.toString() : undefined, commitTs: ev.commitTs };
}

/** Commits one transaction writing `puts` (undefined value: delete); returns what it wrote. */
export async function commitTxn(kv: KvClient, puts: Array<[string, string | undefined]>): Promise<Written[]> {
  const txn = await kv.begin();
  for (const [k, v] of puts) {
    if (v === undefined) txn.delete(k);
    else txn.put(k, v);
  }
  await txn.commit();
  return puts.map(([key, value]) => ({ key, value, commitTs: txn.commitTs! }));
}

/**
 * Reads the watch until a resolved ts at or past `untilTs`; returns the changes seen. Fails
 * with what it has seen if that takes longer than `timeoutMs`.
 */
export async function collectUntil(
  it: AsyncIterator<WatchEvent>,
  until: bigint | Promise<bigint>,
  timeoutMs: number,
  seen: Written[] = [],
): Promise<Written[]> {
  // The target may be known only later (the writes run while the watch reads); the deadline
  // counts from then.
  let untilTs: bigint | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    Promise.resolve(until).then((ts) => {
      untilTs = ts;
      timer = setTimeout(() => {
        reject(new Error(`the watch did not resolve past ${ts} within ${timeoutMs} ms (${seen.length} changes seen)`));
      }, timeoutMs);
    }, reject);
  });
  try {
    for (;;) {
      const next = await Promise.race([it.next(), deadline]);
      if (next.done) throw new Error(`the watch ended before resolving past ${untilTs}`);
      const ev = next.value;
      if (ev.type === "resolved") {
        if (untilTs !== undefined && ev.ts >= untilTs) return seen;
        continue;
      }
      seen.push(writtenOf(ev));
    }
  } finally {
    clearTimeout(timer);
  }
}
