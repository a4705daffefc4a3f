/**
 * Randomized bank test: 10 accounts, concurrent transfers through a 2PC test client over gRPC,
 * some clients "crashing" mid-2PC and leaving locks for others to resolve. At random snapshots
 * the total is unchanged and repeated reads of one snapshot agree (no partial transfer visible);
 * at the end every account holds exactly its initial balance plus the committed transfers.
 * Replay a failure with BANK_SEED=<seed printed in the message>: the seed fixes every transfer's
 * accounts, amount and crash point; the interleaving still depends on timing, as in any real run.
 */
import { mulberry32 } from "../../src/util/random.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TxnServer } from "./txn-server.js";
import { b, startTxnServer } from "./txn-server.js";
import type { CrashPoint } from "./test-txn-client.js";
import { LocalTso, TestTxnClient, TxnAbortedError } from "./test-txn-client.js";

const SEED = Number(process.env.BANK_SEED ?? 20261125);
const ACCOUNTS = 10;
const INITIAL = 1000;
const WORKERS = 6;
const TRANSFERS_PER_WORKER = 20;
const CRASH_PROBABILITY = 0.12;
/** Workers start no new transfer after this, so a slow (loaded) machine still finishes in budget. */
const WORKLOAD_MS = 7_000;
const TRANSFER_DEADLINE_MS = 8_000;
const TEST_BUDGET_MS = 19_000;
const ctx = `BANK_SEED=${SEED}`;

const rng = mulberry32;

const account = (i: number) => Buffer.from(`acct-${String(i).padStart(2, "0")}`);
const encode = (n: number) => Buffer.from(String(n));
const decode = (v: Buffer | undefined, what: string) => {
  if (v === undefined) throw new Error(`${what}: account has no value (${ctx})`);
  return Number(v.toString());
};

describe(`bank transfers under concurrency and client crashes (${ctx})`, () => {
  let srv: TxnServer;
  let client: TestTxnClient;

  beforeAll(async () => {
    srv = await startTxnServer();
    client = new TestTxnClient(srv.client, new LocalTso(), { lockTtlMs: 60n, opDeadlineMs: 5_000, context: ctx });
  });
  afterAll(() => srv.stop());

  /** All balances at one snapshot ts, read twice (scan, then per-key gets): both reads must agree. */
  async function snapshot(ts: bigint): Promise<number[]> {
    const scanned = await client.scanAt(ts, b(), 100);
    expect([...scanned.keys()], `accounts seen by the scan at ${ts} (${ctx})`).toEqual(
      Array.from({ length: ACCOUNTS }, (_, i) => account(i).toString()),
    );
    const balances = [...scanned.values()].map((v, i) => decode(v, `scan of ${account(i)} at ${ts}`));
    const pinned = client.readAt(ts);
    for (let i = 0; i < ACCOUNTS; i++) {
      const v = decode(await pinned.get(account(i)), `get of ${account(i)} at ${ts}`);
      expect(v, `account ${i} at snapshot ${ts}: scan and get disagree (${ctx})`).toBe(balances[i]);
    }
    return balances;
  }

  it(
    "total is conserved at every snapshot; final balances match the committed transfers",
    async () => {
      const started = Date.now();
      const setup = client.begin();
      for (let i = 0; i < ACCOUNTS; i++) setup.set(account(i), encode(INITIAL));
      expect(await setup.commit()).toBe("committed");

      const expected = Array.from({ length: ACCOUNTS }, () => INITIAL);
      const stats = { transfers: 0, committed: 0, crashedCommitted: 0, crashedUncommitted: 0, aborts: 0, snapshots: 0 };
      let running = true;

      async function transfer(rand: () => number, worker: number, n: number): Promise<void> {
        const from = Math.floor(rand() * ACCOUNTS);
        const to = (from + 1 + Math.floor(rand() * (ACCOUNTS - 1))) % ACCOUNTS;
        const amount = 1 + Math.floor(rand() * 100);
        const crashRoll = rand();
        const crash: CrashPoint =
          crashRoll >= CRASH_PROBABILITY
            ? "none"
            : (["after-prewrite-primary", "after-prewrite-all", "after-commit-primary"] as const)[
                Math.floor(rand() * 3)
              ]!;
        const deadline = Date.now() + TRANSFER_DEADLINE_MS;
        for (let attempt = 0; ; attempt++) {
          if (Date.now() > deadline)
            throw new Error(`worker ${worker} transfer ${n}: no commit after ${attempt} attempts (${ctx})`);
          const txn = client.begin();
          try {
            const fromBal = decode(await txn.get(account(from)), `worker ${worker} read of ${from}`);
            const toBal = decode(await txn.get(account(to)), `worker ${worker} read of ${to}`);
            txn.set(account(from), encode(fromBal - amount));
            txn.set(account(to), encode(toBal + amount));
            const outcome = await txn.commit(crash);
            if (outcome === "crashed-uncommitted") {
              stats.crashedUncommitted++;
              return; // never committed: it must leave no trace once its locks are resolved
            }
            expected[from]! -= amount;
            expected[to]! += amount;
            if (outcome === "crashed-committed") stats.crashedCommitted++;
            else stats.committed++;
            return;
          } catch (err) {
            if (!(err instanceof TxnAbortedError)) throw err;
            stats.aborts++;
            // Exponential backoff with jitter: without it, hot accounts can starve one transfer.
            await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 4 * 2 ** attempt)));
          }
        }
      }

      async function worker(id: number): Promise<void> {
        const rand = rng(SEED * 31 + id);
        for (let n = 0; n < TRANSFERS_PER_WORKER && Date.now() - started < WORKLOAD_MS; n++) {
          await transfer(rand, id, n);
          stats.transfers++;
        }
      }

      async function checker(): Promise<void> {
        const rand = rng(SEED * 31 + 999);
        while (running) {
          const ts = client.tso.next();
          const balances = await snapshot(ts);
          const total = balances.reduce((s, x) => s + x, 0);
          expect(total, `total at snapshot ${ts}: balances ${balances.join(",")} (${ctx})`).toBe(ACCOUNTS * INITIAL);
          stats.snapshots++;
          await new Promise((r) => setTimeout(r, rand() * 30));
        }
      }

      const check = checker();
      try {
        await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(id)));
      } finally {
        running = false;
        await check;
      }

      // Crashed clients' locks expire and get resolved by this final read.
      const final = await snapshot(client.tso.next());
      expect(final, `final balances vs. committed transfers (${ctx}, stats ${JSON.stringify(stats)})`).toEqual(
        expected,
      );
      expect(stats.committed + stats.crashedCommitted + stats.crashedUncommitted).toBe(stats.transfers);
      expect(stats.committed, `committed transfers: too few to mean anything (${ctx})`).toBeGreaterThanOrEqual(20);
      expect(stats.snapshots, `snapshots taken during the run (${ctx})`).toBeGreaterThan(3);
      expect(stats.crashedUncommitted + stats.crashedCommitted, `crashes exercised (${ctx})`).toBeGreaterThan(0);
      expect(Date.now() - started, `bank test budget (${ctx})`).toBeLessThan(TEST_BUDGET_MS);
      console.log(`bank ${ctx}: ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
    },
    TEST_BUDGET_MS + 5_000,
  );
});
