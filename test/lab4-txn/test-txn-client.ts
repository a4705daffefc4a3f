/**
 * A small Percolator 2PC client for the bank test (the real client library lives in src/client and
 * is someone else's). It prewrites the primary first, then the secondaries, commits the primary
 * (the commit point), then the secondaries. A reader or writer that meets a lock resolves it the
 * way TiKV clients do: CheckTxnStatus on the lock's primary, then ResolveLock commit/rollback, or
 * back off while the lock is alive. Every loop has a deadline and a message.
 */
import type { TinyKvRpc } from "../../src/client/kv-rpc.js";
import type { KeyError, LockInfo, Mutation } from "../../src/proto/kvrpcpb.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import { formatKey } from "../../src/util/bytes.js";

/** A local TSO stub: physical ms << 18 | logical, strictly increasing. */
export class LocalTso {
  private last = 0n;

  next(): bigint {
    const now = BigInt(Date.now()) << 18n;
    this.last = now > this.last ? now : this.last + 1n;
    return this.last;
  }
}

/** The txn cannot commit (write conflict, or rolled back by a resolver); the caller may retry anew. */
export class TxnAbortedError extends Error {
  constructor(
    readonly startTs: bigint,
    reason: string,
  ) {
    super(`txn ${startTs} aborted: ${reason}`);
    this.name = "TxnAbortedError";
  }
}

/** Where a simulated client crash stops the 2PC, leaving its locks for others to resolve. */
export type CrashPoint = "none" | "after-prewrite-primary" | "after-prewrite-all" | "after-commit-primary";

export type CommitOutcome = "committed" | "crashed-uncommitted" | "crashed-committed";

export interface ClientOptions {
  lockTtlMs: bigint;
  /** Budget for one operation (one get, one prewrite phase...) including lock waits. */
  opDeadlineMs: number;
  /** Extra text for every error, e.g. the test's seed. */
  context: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TestTxnClient {
  constructor(
    readonly rpc: TinyKvRpc,
    readonly tso: LocalTso,
    readonly opts: ClientOptions,
  ) {}

  begin(): TestTxn {
    return new TestTxn(this, this.tso.next());
  }

  /** A txn reading the snapshot at `ts` (for checkers that read one snapshot several ways). */
  readAt(ts: bigint): TestTxn {
    return new TestTxn(this, ts);
  }

  /** Retries `attempt` with backoff until it returns a value; `undefined` means "blocked, try again". */
  async retry<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + this.opts.opDeadlineMs;
    let backoff = 2;
    for (;;) {
      const v = await attempt();
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Error(`${what}: still blocked after ${this.opts.opDeadlineMs} ms (${this.opts.context})`);
      await sleep(backoff * (0.5 + Math.random()));
      backoff = Math.min(backoff * 2, 40);
    }
  }

  /**
   * Tries to clear a lock that blocks us. Returns true when the lock's txn is now finished
   * (committed or rolled back, its locks resolved), false while it is alive (back off and retry).
   */
  async resolveLock(lock: LockInfo): Promise<boolean> {
    const status = await this.rpc.kvCheckTxnStatus({
      primaryKey: lock.primaryLock,
      lockTs: lock.lockVersion,
      currentTs: this.tso.next(),
    });
    this.expectNoRegionError("CheckTxnStatus", status.regionError);
    if (status.lockTtl > 0n) return false;
    const res = await this.rpc.kvResolveLock({ startVersion: lock.lockVersion, commitVersion: status.commitVersion });
    this.expectNoRegionError("ResolveLock", res.regionError);
    if (res.error)
      throw new Error(
        `ResolveLock of txn ${lock.lockVersion} failed: ${describeKeyError(res.error)} (${this.opts.context})`,
      );
    return true;
  }

  /** The bank test runs on one standalone store: a region error would be a server bug. */
  expectNoRegionError(rpc: string, regionError: unknown): void {
    if (regionError)
      throw new Error(`${rpc}: unexpected region error ${JSON.stringify(regionError)} (${this.opts.context})`);
  }

  /** A consistent read of keys [start, ...) at `ts`, resolving locks until none blocks. */
  async scanAt(ts: bigint, startKey: Buffer, limit: number): Promise<Map<string, Buffer>> {
    return this.retry(`scan at ${ts}`, async () => {
      const res = await this.rpc.kvScan({ startKey, limit, version: ts });
      this.expectNoRegionError("KvScan", res.regionError);
      const locked = res.pairs.filter((p) => p.error);
      if (locked.length === 0) return new Map(res.pairs.map((p) => [p.key.toString(), p.value]));
      for (const p of locked) {
        if (!p.error!.locked)
          throw new Error(`KvScan: unexpected key error ${describeKeyError(p.error!)} (${this.opts.context})`);
        await this.resolveLock(p.error!.locked);
      }
      return undefined;
    });
  }
}

export class TestTxn {
  private readonly mutations = new Map<string, Mutation>();

  constructor(
    private readonly client: TestTxnClient,
    readonly startTs: bigint,
  ) {}

  /** The value of `key` in this txn's snapshot, resolving locks of older txns. */
  async get(key: Buffer): Promise<Buffer | undefined> {
    const c = this.client;
    const res = await c.retry(`get ${formatKey(key)} at ${this.startTs}`, async () => {
      const r = await c.rpc.kvGet({ key, version: this.startTs });
      c.expectNoRegionError("KvGet", r.regionError);
      if (r.error?.locked) {
        await c.resolveLock(r.error.locked);
        return undefined;
      }
      if (r.error) throw new Error(`KvGet: unexpected key error ${describeKeyError(r.error)} (${c.opts.context})`);
      return r;
    });
    return res.notFound ? undefined : res.value;
  }

  set(key: Buffer, value: Buffer): void {
    this.mutations.set(key.toString("latin1"), { op: Op.Put, key, value });
  }

  /** Runs 2PC; with a crash point it stops there, as a client process dying would. */
  async commit(crash: CrashPoint = "none"): Promise<CommitOutcome> {
    const c = this.client;
    const [primary, ...secondaries] = [...this.mutations.values()].sort((x, y) => Buffer.compare(x.key, y.key));
    if (primary === undefined) return "committed";

    await this.prewrite(primary.key, [primary], []);
    if (crash === "after-prewrite-primary") return "crashed-uncommitted";
    if (secondaries.length > 0) await this.prewrite(primary.key, secondaries, [primary.key]);
    if (crash === "after-prewrite-all") return "crashed-uncommitted";

    // The commit point: once the primary's write record exists the txn is committed.
    const commitTs = c.tso.next();
    const res = await c.retry(`commit primary of ${this.startTs}`, async () => {
      const r = await c.rpc.kvCommit({ startVersion: this.startTs, commitVersion: commitTs, keys: [primary.key] });
      c.expectNoRegionError("KvCommit", r.regionError);
      return r.error?.retryable ? undefined : r;
    });
    if (res.error) {
      // A resolver found our primary lock expired and rolled us back: clean up our secondaries.
      await this.rollback(secondaries.map((m) => m.key));
      throw new TxnAbortedError(this.startTs, `commit of primary refused: ${describeKeyError(res.error)}`);
    }
    if (crash === "after-commit-primary") return "crashed-committed";
    if (secondaries.length > 0) {
      const r = await c.rpc.kvCommit({
        startVersion: this.startTs,
        commitVersion: commitTs,
        keys: secondaries.map((m) => m.key),
      });
      c.expectNoRegionError("KvCommit", r.regionError);
      if (r.error) {
        throw new Error(
          `txn ${this.startTs}: secondaries failed to commit after the primary did: ${describeKeyError(r.error)} (${c.opts.context})`,
        );
      }
    }
    return "committed";
  }

  /**
   * Prewrites `mutations`, resolving locks of finished or expired txns; on a write conflict or a
   * live lock it rolls back what it locked and aborts.
   */
  private async prewrite(primary: Buffer, mutations: Mutation[], alreadyLocked: Buffer[]): Promise<void> {
    const c = this.client;
    await c.retry(`prewrite of ${this.startTs}`, async () => {
      const res = await c.rpc.kvPrewrite({
        startVersion: this.startTs,
        primaryLock: primary,
        mutations,
        lockTtl: c.opts.lockTtlMs,
      });
      c.expectNoRegionError("KvPrewrite", res.regionError);
      if (res.errors.length === 0) return true;
      const conflict = res.errors.find((e) => !e.locked);
      if (conflict) {
        await this.rollback([...alreadyLocked, ...mutations.map((m) => m.key)]);
        throw new TxnAbortedError(this.startTs, describeKeyError(conflict));
      }
      for (const e of res.errors) {
        if (await c.resolveLock(e.locked!)) continue;
        // A live lock: waiting for it could wait on a txn that waits on us (until both TTLs
        // expire), so give way instead: abort and let the caller retry with backoff.
        await this.rollback([...alreadyLocked, ...mutations.map((m) => m.key)]);
        throw new TxnAbortedError(this.startTs, `blocked by a live lock: ${describeKeyError(e)}`);
      }
      return undefined; // every blocking lock is resolved now: prewrite again
    });
  }

  private async rollback(keys: Buffer[]): Promise<void> {
    if (keys.length === 0) return;
    const c = this.client;
    const res = await c.rpc.kvBatchRollback({ startVersion: this.startTs, keys });
    c.expectNoRegionError("KvBatchRollback", res.regionError);
    if (res.error)
      throw new Error(`rollback of txn ${this.startTs} refused: ${describeKeyError(res.error)} (${c.opts.context})`);
  }
}

export function describeKeyError(e: KeyError): string {
  if (e.locked) return `locked by txn ${e.locked.lockVersion} (primary ${formatKey(e.locked.primaryLock)})`;
  if (e.conflict) return `write conflict on ${formatKey(e.conflict.key)} with a commit at ${e.conflict.conflictTs}`;
  if (e.abort) return `abort: ${e.abort}`;
  if (e.retryable) return `retryable: ${e.retryable}`;
  return "empty key error";
}
