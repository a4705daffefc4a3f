/**
 * A small transactional workload on the simulated raftstore: a bank whose clients move money
 * between accounts with Percolator transactions (prewrite both keys, commit the primary, then
 * the secondary) through the txn layer's commands on each store's CommandRunner, and take
 * snapshot reads of every account. The bank checker requires every snapshot read and the final
 * read to sum to the opening total. It exists so that a deliberate latch bug can be shown to be
 * caught; the only faults are a few ms of disk and network latency (a run without a bug must
 * pass, so any failure is the bug's).
 */
import type { Context } from "../../../src/proto/kvrpcpb.js";
import { Op } from "../../../src/proto/kvrpcpb.js";
import type { Store } from "../../../src/kv/raftstore/index.js";
import { RaftStorage, RegionError } from "../../../src/kv/storage/index.js";
import type { TxnKeyError } from "../../../src/txn/index.js";
import {
  CommandRunner,
  DEFAULT_TXN_BOUNDS,
  kvBatchRollback,
  kvCommit,
  kvGet,
  kvPrewrite,
} from "../../../src/txn/index.js";
import type { DeliberateBugs } from "../../../src/util/deliberate-bugs.js";
import { mulberry32 } from "../../../src/util/random.js";
import { sleep } from "../../../src/util/runtime.js";
import { reorder } from "../../../src/kv/transport/filters.js";
import { TestCluster } from "../../harness/cluster.js";
import type { BankRead } from "../checkers/index.js";
import { checkBank } from "../checkers/index.js";
import { SimRuntime } from "./sim-runtime.js";

export interface BankSimOptions {
  seed: number;
  accounts?: number;
  /** Clients making transfers at once. */
  clients?: number;
  /** Simulated ms of transfers. */
  durationMs?: number;
  deliberateBugs?: DeliberateBugs;
}

export interface BankSimResult {
  seed: number;
  ok: boolean;
  failures: string[];
  committed: number;
  aborted: number;
  secondaryRefusals: number;
  reads: number;
  traceHash: string;
  traceTail: string[];
}

const OPENING_BALANCE = 100;
/** A command that found no leader, or whose leader changed, is retried this long (simulated ms). */
const COMMAND_DEADLINE_MS = 5_000;
const LOCK_TTL_MS = 3_000n;
/** Transfers start in rounds this long apart (simulated ms). */
const ROUND_MS = 100;

class Bank {
  private readonly runners = new Map<Store, CommandRunner>();
  private logical = 0n;
  /** Committed transactions whose secondary's commit was refused (with latches held, never). */
  secondaryRefusals = 0;
  private lastPhysical = 0n;

  constructor(
    private readonly cluster: TestCluster,
    private readonly runtime: SimRuntime,
    private readonly bugs: DeliberateBugs | undefined,
  ) {}

  /** A TSO on the simulated clock: physical ms << 18 | logical, strictly increasing. */
  timestamp(): bigint {
    const physical = BigInt(Math.floor(this.runtime.now()));
    if (physical > this.lastPhysical) [this.lastPhysical, this.logical] = [physical, 0n];
    else this.logical++;
    return (this.lastPhysical << 18n) | this.logical;
  }

  /** Runs a txn command on the leader of `key`'s region, retrying region errors with backoff until a deadline. */
  async onLeader<T>(
    key: Buffer,
    what: string,
    command: (runner: CommandRunner, ctx: Context) => Promise<T>,
  ): Promise<T> {
    const deadline = this.runtime.elapsedMs + COMMAND_DEADLINE_MS;
    let backoff = 5;
    for (;;) {
      const region = this.cluster.regionFor(key);
      const storeId = region && this.cluster.leaderOf(region.id);
      const store = storeId === undefined ? undefined : this.cluster.store(storeId);
      if (region && store) {
        const ctx: Context = {
          regionId: region.id,
          regionEpoch: region.regionEpoch,
          peer: store.peerMeta(region.id),
          term: 0n,
        };
        try {
          return await command(this.runnerOf(store), ctx);
        } catch (err) {
          if (!(err instanceof RegionError)) throw err;
        }
      }
      if (this.runtime.elapsedMs > deadline)
        throw new Error(`${what}: no leader took it within ${COMMAND_DEADLINE_MS} simulated ms`);
      await sleep(this.runtime, backoff);
      backoff = Math.min(backoff * 2, 100);
    }
  }

  /** One runner (one set of latches) per running store, as the server has. */
  private runnerOf(store: Store): CommandRunner {
    let runner = this.runners.get(store);
    if (!runner)
      this.runners.set(
        store,
        (runner = new CommandRunner(new RaftStorage(store), { ...DEFAULT_TXN_BOUNDS, clock: this.runtime }, this.bugs)),
      );
    return runner;
  }

  /** The balances at `ts`, or undefined when a lock hides one (the reader tries again later). */
  async read(accounts: readonly string[], ts: bigint): Promise<Record<string, number> | undefined> {
    const balances: Record<string, number> = {};
    // All at once, as a client batching its gets would: one ReadIndex round, not one per account.
    const responses = await Promise.all(
      accounts.map((account) => {
        const key = Buffer.from(account);
        return this.onLeader(key, `get ${account}`, (runner, context) => kvGet(runner, { context, key, version: ts }));
      }),
    );
    for (const [i, resp] of responses.entries()) {
      if ("error" in resp) return undefined;
      balances[accounts[i]!] = resp.value === undefined ? Number.NaN : Number(resp.value.toString());
    }
    return balances;
  }

  /** Moves `amount` from one account to another in one transaction; true when it committed. */
  async transfer(from: string, to: string, pick: (balance: number) => number): Promise<boolean> {
    const startTs = this.timestamp();
    const balances = await this.read([from, to], startTs);
    if (!balances || balances[from]! <= 0) return false;
    const amount = pick(balances[from]!);
    const [fromKey, toKey] = [Buffer.from(from), Buffer.from(to)];
    const prewrite = await this.onLeader(fromKey, `prewrite ${startTs}`, (runner, context) =>
      kvPrewrite(runner, {
        context,
        primaryLock: fromKey,
        startVersion: startTs,
        lockTtl: LOCK_TTL_MS,
        mutations: [
          { op: Op.Put, key: fromKey, value: Buffer.from(String(balances[from]! - amount)) },
          { op: Op.Put, key: toKey, value: Buffer.from(String(balances[to]! + amount)) },
        ],
      }),
    );
    if (prewrite.errors.length > 0) return false; // a refused prewrite wrote nothing
    const commitTs = this.timestamp();
    const primary = await this.onLeader(fromKey, `commit ${startTs}`, (runner, context) =>
      kvCommit(runner, { context, startVersion: startTs, commitVersion: commitTs, keys: [fromKey] }),
    );
    if (primary.error) {
      await this.onLeader(fromKey, `rollback ${startTs}`, (runner, context) =>
        kvBatchRollback(runner, { context, startVersion: startTs, keys: [fromKey, toKey] }),
      );
      return false;
    }
    // The primary's commit decided it: the secondary's commit only rolls the decision forward.
    const secondary = await this.onLeader(toKey, `commit ${startTs} secondary`, (runner, context) =>
      kvCommit(runner, { context, startVersion: startTs, commitVersion: commitTs, keys: [toKey] }),
    );
    if (secondary.error) this.secondaryRefusals++;
    if (secondary.error)
      this.runtime.note(
        `txn ${startTs} committed, but its secondary ${to} did not: ${describeKeyError(secondary.error)}`,
      );
    return true;
  }

  /** Writes the opening balances in one transaction. */
  async open(accounts: readonly string[]): Promise<void> {
    const startTs = this.timestamp();
    const primary = Buffer.from(accounts[0]!);
    const keys = accounts.map((a) => Buffer.from(a));
    const mutations = keys.map((key) => ({ op: Op.Put, key, value: Buffer.from(String(OPENING_BALANCE)) }));
    const pre = await this.onLeader(primary, "open: prewrite", (runner, context) =>
      kvPrewrite(runner, { context, primaryLock: primary, startVersion: startTs, lockTtl: LOCK_TTL_MS, mutations }),
    );
    if (pre.errors.length > 0)
      throw new Error(`opening the bank: prewrite refused: ${pre.errors.map(describeKeyError).join("; ")}`);
    const commitVersion = this.timestamp();
    const commit = await this.onLeader(primary, "open: commit", (runner, context) =>
      kvCommit(runner, { context, startVersion: startTs, commitVersion, keys }),
    );
    if (commit.error) throw new Error(`opening the bank: commit refused: ${describeKeyError(commit.error)}`);
  }
}

function describeKeyError(e: TxnKeyError): string {
  return `${e.kind} on ${e.key.toString()}`;
}

export async function runBankSimulation(opts: BankSimOptions): Promise<BankSimResult> {
  const runtime = new SimRuntime(opts.seed);
  const rng = mulberry32(opts.seed ^ 0x0ba2_4c0d);
  const accounts = Array.from({ length: opts.accounts ?? 3 }, (_, i) => `acct${i}`);
  const cluster = new TestCluster({
    stores: 3,
    disk: "sim",
    runtime,
    seed: opts.seed,
    config: { deliberateBugs: opts.deliberateBugs },
  });
  const bank = new Bank(cluster, runtime, opts.deliberateBugs);
  const failures: string[] = [];
  const reads: BankRead[] = [];
  let committed = 0;
  let aborted = 0;
  let final: BankRead | undefined;
  let finished = false;

  const scenario = async (): Promise<void> => {
    await cluster.start();
    // Disks and a network that take a few ms, each message its own: a command's write stays in
    // flight long enough for another to overlap it, and a read's heartbeat round may overtake it.
    for (const id of cluster.storeIds) cluster.simDisk(id)!.faults.writeLatencyMs = (w) => (w.sync ? 4 : 1);
    cluster.network.addFilter(reorder(15));
    await bank.open(accounts);
    const stopAt = runtime.elapsedMs + (opts.durationMs ?? 3_000);
    const transfers = Array.from({ length: opts.clients ?? 4 }, async (_, c) => {
      while (runtime.elapsedMs < stopAt) {
        const from = accounts[Math.floor(rng() * accounts.length)]!;
        const to = accounts.filter((a) => a !== from)[Math.floor(rng() * (accounts.length - 1))]!;
        if (await bank.transfer(from, to, (balance) => 1 + Math.floor(rng() * Math.min(balance, 10)))) committed++;
        else aborted++;
        // Every client starts its next transfer on the same round boundary: their prewrites contend.
        await sleep(runtime, ROUND_MS - (runtime.elapsedMs % ROUND_MS));
      }
      runtime.note(`bank client ${c} done`);
    });
    const reader = (async () => {
      while (runtime.elapsedMs < stopAt) {
        const balances = await bank.read(accounts, bank.timestamp());
        if (balances) reads.push({ client: -1, at: runtime.elapsedMs, balances });
        await sleep(runtime, 20);
      }
    })();
    await Promise.all([...transfers, reader]);
    for (let attempt = 0; attempt < 50 && !final; attempt++) {
      const balances = await bank.read(accounts, bank.timestamp());
      if (balances) final = { client: -1, at: runtime.elapsedMs, balances };
      else await sleep(runtime, 100);
    }
    if (!final) failures.push("the final read found a lock on some account for 5 simulated s");
    await cluster.shutdown();
  };

  runtime.schedule("bank", 0, () => {
    scenario().then(
      () => (finished = true),
      (err: unknown) => {
        failures.push(`bank scenario threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        finished = true;
      },
    );
  });
  await runtime.runUntil((opts.durationMs ?? 3_000) + 60_000, () => finished);
  if (!finished) failures.push(`hung: the bank scenario did not finish by ${runtime.elapsedMs} simulated ms`);
  if (final) {
    const bankCheck = checkBank({ accounts, total: OPENING_BALANCE * accounts.length, reads, final });
    if (!bankCheck.ok) failures.push(bankCheck.report);
  }
  for (const { line, err } of runtime.eventErrors)
    failures.push(`event "${line}" threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return {
    seed: opts.seed,
    ok: failures.length === 0,
    failures,
    committed,
    aborted,
    secondaryRefusals: bank.secondaryRefusals,
    reads: reads.length,
    traceHash: runtime.traceHash(),
    traceTail: runtime.traceTail(),
  };
}

export function describeBankResult(r: BankSimResult): string {
  return [
    `bank seed ${r.seed}: ${r.ok ? "ok" : "FAILED"} (${r.committed} transfers committed, ${r.aborted} aborted, ${r.reads} snapshot reads)`,
    ...(r.ok ? [] : ["failures:", ...r.failures.map((f) => `  ${f}`)]),
    "trace tail:",
    ...r.traceTail.map((l) => `  ${l}`),
    `trace hash: ${r.traceHash}`,
  ].join("\n");
}
