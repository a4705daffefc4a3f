/**
 * tinykv-ctl backup while a bank workload keeps transferring, restore into a fresh cluster: every
 * key equals its value at the backup's timestamp and the bank total is preserved; a corrupt file
 * and a non-empty cluster are refused. Transfers draw from BACKUP_SEED (printed on failure).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { TxnConflictError } from "../../src/client/errors.js";
import { mulberry32 } from "../../src/util/random.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { tempDir, waitFor } from "../harness/wait.js";

const SEED = Number(process.env.BACKUP_SEED ?? 20261202);
const ctx = `BACKUP_SEED=${SEED}`;
const ACCOUNTS = 20;
const INITIAL = 1000;
const CTL = fileURLToPath(new URL("../../dist/src/cli/tinykv-ctl.js", import.meta.url));
/** Small regions, so the backup spans several of them. */
const SPLITTY_CONFIG = { ...FAST_STORE_CONFIG, regionMaxSize: 6 * 1024, regionSplitSize: 3 * 1024 };

const account = (i: number) => `acct-${String(i).padStart(2, "0")}`;

function ctl(scheduler: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CTL, "--scheduler", scheduler, "--timeout", "15000", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`tinykv-ctl ${args.join(" ")} did not exit within 40 s; stdout: ${out}; stderr: ${err}`));
    }, 40_000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

async function startCluster(): Promise<{ cluster: ProcessCluster; kv: KvClient }> {
  const cluster = new ProcessCluster(SPLITTY_CONFIG);
  await cluster.startScheduler();
  await cluster.addStore(1);
  const kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 20_000 });
  // The first write waits for the bootstrapped region to elect its leader.
  await waitFor(
    async () => {
      await kv.put("probe", "1");
      await kv.delete("probe");
      return true;
    },
    {
      timeoutMs: 20_000,
      message: "the fresh cluster never served a raw write",
    },
  );
  return { cluster, kv };
}

async function allTxnPairs(kv: KvClient, ts: bigint): Promise<Map<string, string>> {
  const pairs = await kv.snapshotAt(ts).scan("", "", 100_000);
  return new Map(pairs.map((p) => [p.key.toString(), p.value.toString()]));
}

describe(`backup and restore (${ctx})`, () => {
  const dir = tempDir("tinykv-backup-");
  let source: { cluster: ProcessCluster; kv: KvClient };
  let target: { cluster: ProcessCluster; kv: KvClient };

  beforeAll(async () => {
    [source, target] = await Promise.all([startCluster(), startCluster()]);
  }, 60_000);
  afterAll(async () => {
    for (const c of [source, target]) {
      c?.kv.close();
      await c?.cluster.shutdown();
    }
    dir.cleanup();
  });

  it("a backup taken during transfers restores into a fresh cluster with every key as of the backup ts", async () => {
    const { kv } = source;
    const setup = await kv.begin();
    for (let i = 0; i < ACCOUNTS; i++) setup.put(account(i), String(INITIAL));
    for (let i = 0; i < 150; i++) setup.put(`pad-${String(i).padStart(4, "0")}`, "x".repeat(100));
    await setup.commit();
    for (let i = 0; i < 40; i++) await kv.put(`raw-${i}`, `value-${i}`);
    await kv.put("raw-in-lock-cf", "lock-cf-value", "lock");
    // A key with a ttl must come back with it (about the time it had left), not as a key forever.
    await kv.put("raw-ttl", "expiring", "", { ttlSeconds: 3600 });
    await waitFor(async () => ((await kv.getAllRegions()).length >= 2 ? true : undefined), {
      timeoutMs: 20_000,
      message: `the source cluster never split into 2+ regions (${ctx})`,
    });

    const rng = mulberry32(SEED);
    let stop = false;
    let committed = 0;
    const transfers = (async () => {
      while (!stop) {
        const from = Math.floor(rng() * ACCOUNTS);
        const to = (from + 1 + Math.floor(rng() * (ACCOUNTS - 1))) % ACCOUNTS;
        const amount = 1 + Math.floor(rng() * 50);
        const txn = await kv.begin();
        const a = Number((await txn.get(account(from)))!.toString());
        const b = Number((await txn.get(account(to)))!.toString());
        txn.put(account(from), String(a - amount));
        txn.put(account(to), String(b + amount));
        try {
          await txn.commit();
          committed++;
        } catch (err) {
          // A conflict with another transfer is the workload working; anything else fails the test.
          if (!(err instanceof TxnConflictError)) throw err;
        }
      }
    })();

    await waitFor(() => committed >= 3 || undefined, {
      timeoutMs: 20_000,
      message: `the workload committed no transfer before the backup (${ctx})`,
    });
    const backupDir = join(dir.path, "backup");
    const taken = await ctl(source.cluster.schedulerAddr, ["backup", "--to", backupDir]);
    const before = committed;
    await waitFor(() => committed > before || undefined, {
      timeoutMs: 20_000,
      message: `no transfer committed after the backup (${ctx})`,
    });
    stop = true;
    await transfers;
    expect(taken.code, `backup failed (${ctx}): ${taken.err}`).toBe(0);
    expect(taken.err).toMatch(/backup: transactional, region 1\/\d+/);

    const manifest = JSON.parse(readFileSync(join(backupDir, "manifest.json"), "utf8"));
    const backupTs = BigInt(manifest.backupTs);
    expect(manifest.regions.length, `regions in the manifest (${ctx})`).toBeGreaterThanOrEqual(2);
    const atBackup = await allTxnPairs(kv, backupTs);
    const now = await allTxnPairs(kv, await kv.tso());
    expect(
      now,
      `the workload changed nothing after the backup ts, so this test would prove nothing (${ctx})`,
    ).not.toEqual(atBackup);

    const restored = await ctl(target.cluster.schedulerAddr, ["restore", "--from", backupDir]);
    expect(restored.code, `restore failed (${ctx}): ${restored.err}`).toBe(0);
    expect(restored.err).toMatch(/restore: 4 files verified/);

    const got = await allTxnPairs(target.kv, await target.kv.tso());
    expect(got, `restored transactional data vs the source at the backup ts (${ctx})`).toEqual(atBackup);
    let total = 0;
    for (let i = 0; i < ACCOUNTS; i++) total += Number(got.get(account(i)));
    expect(total, `bank total after restore (${ctx})`).toBe(ACCOUNTS * INITIAL);
    const raw = await target.kv.scan("", "", 1000);
    expect(new Map(raw.map((p) => [p.key.toString(), p.value.toString()])), `restored raw data (${ctx})`).toEqual(
      new Map([
        ...Array.from({ length: 40 }, (_, i): [string, string] => [`raw-${i}`, `value-${i}`]),
        ["raw-ttl", "expiring"],
      ]),
    );
    const ttlLeft = await target.kv.keyTtl("raw-ttl");
    expect(ttlLeft, `the restored raw-ttl key's remaining ttl in s (${ctx})`).toBeDefined();
    expect(ttlLeft!).toBeGreaterThan(3000);
    expect(ttlLeft!).toBeLessThanOrEqual(3600);
    expect(await target.kv.keyTtl("raw-0"), "a key without a ttl stays without one (0: never expires)").toBe(0);
    expect((await target.kv.get("raw-in-lock-cf", "lock"))?.toString()).toBe("lock-cf-value");

    // Restoring again: the cluster is no longer empty.
    const again = await ctl(target.cluster.schedulerAddr, ["restore", "--from", backupDir]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(
      /restore loads only into an empty cluster, and this one holds the transactional key acct-00/,
    );

    // A corrupted file is refused by name before anything is loaded or checked.
    const txnFile = join(backupDir, "txn.jsonl");
    const bytes = readFileSync(txnFile);
    bytes[10] = bytes[10] === 0x41 ? 0x42 : 0x41;
    writeFileSync(txnFile, bytes);
    const corrupt = await ctl(target.cluster.schedulerAddr, ["restore", "--from", backupDir]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.err).toMatch(/backup file txn\.jsonl: is corrupt: .* sha256/);
  }, 120_000);
});
