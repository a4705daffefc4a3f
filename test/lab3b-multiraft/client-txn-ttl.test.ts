// The client's lock TTLs (client-go's rule: time since begin + a base that grows with the txn's
// size) and its heartbeat (KvTxnHeartBeat): a slow transaction is not rolled back by readers that
// meet its locks. Against a real tinyscheduler and fake stores over the real txn handlers.
import { afterEach, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { MANAGED_LOCK_TTL_MS, MAX_LOCK_TTL_MS, txnLockTtlMs } from "../../src/client/lock-ttl.js";
import { waitFor } from "../harness/wait.js";
import { FakeCluster, peer, region } from "./client-fake-store.js";

/**
 * A small base TTL keeps the tests fast: sleeping "past the TTL" takes about a second. Heartbeats
 * come every sixth of it, so a loaded machine delaying a few of them does not let the lock lapse.
 */
const BASE_TTL_MS = 600;
const HEARTBEAT_MS = 100;

let cluster: FakeCluster | undefined;
const clients: KvClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cluster?.stop();
  cluster = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two regions split at "m" (region 10 on store 1, region 20 on store 2), a writer and a reader client. */
async function setup() {
  const c = (cluster = await FakeCluster.start(2));
  await c.addRegion(region(10n, "", "m", [peer(11n, 1n)]), peer(11n, 1n));
  await c.addRegion(region(20n, "m", "", [peer(21n, 2n)]), peer(21n, 2n));
  const connect = async () => {
    const kv = await KvClient.connect({
      scheduler: c.scheduler.addr,
      timeoutMs: 10_000,
      rpcTimeoutMs: 8000,
      lockTtlMs: BASE_TTL_MS,
      heartbeatIntervalMs: HEARTBEAT_MS,
    });
    clients.push(kv);
    return kv;
  };
  return { c, s1: c.store(1n), writer: await connect(), reader: await connect() };
}

/** Reads `key` in fresh transactions, over and over, until stopped; returns what it read. */
function readInLoop(kv: KvClient, key: string): { stop: () => Promise<(string | undefined)[]> } {
  let running = true;
  const seen: (string | undefined)[] = [];
  const loop = (async () => {
    while (running) {
      const r = await kv.begin();
      seen.push((await r.get(key))?.toString());
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

describe("client: lock TTL of a slow transaction", () => {
  it("a txn that sleeps past the base TTL between begin and commit survives a reader polling its key", async () => {
    const { s1, writer, reader } = await setup();
    const seedTxn = await writer.begin();
    seedTxn.put("k", "old");
    await seedTxn.commit();

    const t = await writer.begin();
    await sleep(2 * BASE_TTL_MS);
    t.put("k", "new");
    t.put("z", "new-z");
    // The primary's commit waits until the reader has met the lock and asked for its status.
    s1.hold("kvCommit", () =>
      waitFor(() => s1.servedOk("kvCheckTxnStatus").length >= 1, {
        timeoutMs: 5000,
        message: "the reader to check the writer's lock",
      }).then(() => undefined),
    );
    const readers = readInLoop(reader, "k");
    try {
      await t.commit();
    } finally {
      await readers.stop();
    }
    expect(t.status).toBe("committed");
    const check = await writer.begin();
    expect((await check.get("k"))?.toString()).toBe("new");
    expect((await check.get("z"))?.toString()).toBe("new-z");
  });

  it("a commit that stalls for several TTLs is kept alive by heartbeats while a reader polls", async () => {
    const { s1, writer, reader } = await setup();
    const t = await writer.begin();
    t.put("k", "v");
    t.put("z", "v-z");
    let released = false;
    s1.hold("kvCommit", async () => {
      await sleep(5 * BASE_TTL_MS);
      released = true;
    });
    const readers = readInLoop(reader, "k");
    let seen: (string | undefined)[];
    try {
      await t.commit();
    } finally {
      seen = await readers.stop();
    }
    expect(released).toBe(true);
    expect(t.status).toBe("committed");
    expect(s1.servedOk("kvCheckTxnStatus").length, "the reader met the lock and checked it").toBeGreaterThan(0);
    expect(s1.servedOk("kvTxnHeartBeat").length, "the primary lock was extended").toBeGreaterThan(0);
    expect(
      seen.every((v) => v === undefined || v === "v"),
      `reads: ${seen.join(",")}`,
    ).toBe(true);
    expect((await (await writer.begin()).get("z"))?.toString()).toBe("v-z");

    const beats = s1.servedOk("kvTxnHeartBeat").length;
    await sleep(3 * BASE_TTL_MS);
    expect(s1.servedOk("kvTxnHeartBeat").length, "heartbeats stop once the commit point is passed").toBe(beats);
  });
});

describe("client: lock TTL formula (client-go's txnLockTTL)", () => {
  const MiB = 1024 * 1024;
  it("is the base for a small txn, grows with sqrt(size) up to the managed TTL, plus the time since begin", () => {
    expect(txnLockTtlMs(3000, 100, 0)).toBe(3000n);
    expect(txnLockTtlMs(3000, 100, 4500)).toBe(7500n);
    expect(txnLockTtlMs(3000, MiB, 0)).toBe(6000n);
    expect(txnLockTtlMs(3000, 4 * MiB, 0)).toBe(12000n);
    expect(txnLockTtlMs(3000, 1000 * MiB, 0)).toBe(BigInt(MANAGED_LOCK_TTL_MS));
    expect(txnLockTtlMs(3000, 16 * 1024, 0), "small scaled values never go below the base").toBe(3000n);
    expect(txnLockTtlMs(3000, 100, 10 * 3_600_000), "never over the servers' cap").toBe(BigInt(MAX_LOCK_TTL_MS));
  });
});
