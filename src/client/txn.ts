import type { KvPair, Mutation, ScanResponse } from "../proto/kvrpcpb.js";
import { Op } from "../proto/kvrpcpb.js";
import type { Logger } from "../util/logger.js";
import { errorMessage } from "../util/retry.js";
import {
  describeKeyError,
  KeyLockedError,
  TxnConflictError,
  TxnStateError,
  TxnUndeterminedError,
  UnexpectedKeyError,
} from "./errors.js";
import { prewriteEntryBytes, splitBySize } from "./batches.js";
import type { LockResolver } from "./lock-resolver.js";
import { LockKeeper, txnLockTtlMs } from "./lock-ttl.js";
import type { RequestSender, RetryPolicy } from "./request.js";
import { Backoff, ScanPage } from "./request.js";
import { InvalidReadOptionError, ReadRouting } from "./read-options.js";
import type { Runtime } from "../util/runtime.js";

export type Bytes = string | Buffer | Uint8Array;

export function toBuf(b: Bytes): Buffer {
  return typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.isBuffer(b) ? b : Buffer.from(b);
}

export interface KvEntry {
  key: Buffer;
  value: Buffer;
  /** A raw scan's pair with a ttl: when it expires (ms since the epoch). */
  expiresAtMs?: number;
}

/** What a transaction needs from its client. */
export interface TxnDeps {
  sender: RequestSender;
  resolver: LockResolver;
  tso: () => Promise<bigint>;
  policy: RetryPolicy;
  /** Base lock TTL of a small txn and the heartbeat interval, ms (see lock-ttl.ts). */
  ttl: { baseMs: number; heartbeatIntervalMs: number };
  /** Time and timers of the lock TTL and heartbeat. */
  runtime: Runtime;
  log: Logger;
}

/** Pairs per KvScan request: a page stays far below the servers' scan limit and gRPC's message limit. */
const SCAN_PAGE = 1024;

type TxnState = "active" | "committing" | "committed" | "rolled back" | "failed";

const inRange = (key: Buffer, start: Buffer, end: Buffer) =>
  Buffer.compare(key, start) >= 0 && (end.length === 0 || Buffer.compare(key, end) < 0);

/**
 * A Percolator transaction: reads see the snapshot at start_ts (plus this txn's own writes),
 * writes are buffered until commit(), which runs two-phase commit with the primary key first.
 */
export class Transaction {
  private readonly buffer = new Map<string, Mutation>();
  private state: TxnState = "active";
  /** Set once the primary is committed. */
  commitTs: bigint | undefined;

  constructor(
    private readonly d: TxnDeps,
    readonly startTs: bigint,
    /** Client clock reading at begin(), before start_ts was fetched: lock TTLs count from here. */
    private readonly startedAtMs = d.runtime.now(),
    /** Where its reads may be served (read-options.ts); a stale snapshot is read-only. */
    private readonly readMode: { replica?: boolean; stale?: boolean } = {},
  ) {}

  /** The routing of one read: the txn's mode, plus a replica read asked for by this call. */
  private routing(opts: { replicaRead?: boolean }): ReadRouting {
    return new ReadRouting(this.d.sender.cache, {
      ...this.readMode,
      replica: this.readMode.replica || opts.replicaRead,
    });
  }

  private requireWritable(op: string): void {
    this.requireActive(op);
    if (this.readMode.stale) throw new InvalidReadOptionError(`${op}: a stale snapshot is read-only`);
  }

  get status(): TxnState {
    return this.state;
  }

  private requireActive(op: string): void {
    if (this.state !== "active") throw new TxnStateError(this.startTs, this.state, op);
  }

  put(key: Bytes, value: Bytes): void {
    this.requireWritable("put");
    const k = toBuf(key);
    this.buffer.set(k.toString("hex"), { op: Op.Put, key: k, value: toBuf(value) });
  }

  delete(key: Bytes): void {
    this.requireWritable("delete");
    const k = toBuf(key);
    this.buffer.set(k.toString("hex"), { op: Op.Del, key: k, value: Buffer.alloc(0) });
  }

  /** The value of `key` in this txn: its own write if any, else the snapshot at start_ts. */
  async get(key: Bytes, opts: { replicaRead?: boolean } = {}): Promise<Buffer | undefined> {
    this.requireActive("get");
    const k = toBuf(key);
    const own = this.buffer.get(k.toString("hex"));
    if (own) return own.op === Op.Put ? own.value : undefined;
    const bo = new Backoff("txn get", k, this.d.policy, this.d.runtime);
    const routing = this.routing(opts);
    for (;;) {
      const { resp } = await this.d.sender.onKey(
        "KvGet",
        k,
        bo,
        routing.watch((t) => t.rpc.kvGet({ context: t.ctx, key: k, version: this.startTs })),
        { route: routing.route },
      );
      const lock = resp.error?.locked;
      if (lock) {
        const done = await this.d.resolver.resolve(lock, k, bo);
        await bo.retry(new KeyLockedError(k, lock.lockVersion, lock.primaryLock, lock.lockTtl), done);
        continue;
      }
      if (resp.error) throw new UnexpectedKeyError(`KvGet ${k.toString("hex")}`, resp.error);
      return resp.notFound ? undefined : resp.value;
    }
  }

  /** Up to `limit` pairs with start <= key < end (empty end = no end) in key order, own writes merged in. */
  async scan(start: Bytes, end: Bytes, limit: number, opts: { replicaRead?: boolean } = {}): Promise<KvEntry[]> {
    this.requireActive("scan");
    const s = toBuf(start);
    const e = toBuf(end);
    if (limit <= 0 || (e.length > 0 && Buffer.compare(s, e) >= 0)) return [];
    const own = [...this.buffer.values()].filter((m) => inRange(m.key, s, e));
    const deletes = own.filter((m) => m.op === Op.Del).length;
    const merged = new Map<string, KvEntry>();
    for (const p of await this.snapshotScan(s, e, limit + deletes, this.routing(opts)))
      merged.set(p.key.toString("hex"), p);
    for (const m of own) {
      if (m.op === Op.Put) merged.set(m.key.toString("hex"), { key: m.key, value: m.value });
      else merged.delete(m.key.toString("hex"));
    }
    return [...merged.values()].sort((a, b) => Buffer.compare(a.key, b.key)).slice(0, limit);
  }

  /** KvScan region by region from `start`, resolving locks met on the way. */
  private async snapshotScan(start: Buffer, end: Buffer, limit: number, routing: ReadRouting): Promise<KvEntry[]> {
    const bo = new Backoff("txn scan", start, this.d.policy, this.d.runtime);
    const out: KvEntry[] = [];
    let cursor = start;
    const page = new ScanPage(SCAN_PAGE);
    while (out.length < limit) {
      const want = Math.min(limit - out.length, page.size);
      let answer: Awaited<ReturnType<typeof this.d.sender.onKey<ScanResponse>>>;
      try {
        answer = await this.d.sender.onKey(
          "KvScan",
          cursor,
          bo,
          routing.watch((t) => t.rpc.kvScan({ context: t.ctx, startKey: cursor, limit: want, version: this.startTs })),
          { route: routing.route },
        );
      } catch (err) {
        if (page.shrink(err)) continue;
        throw err;
      }
      const { resp, target } = answer;
      const regionEnd = target.region.endKey;
      const mine = resp.pairs.filter(
        (p: KvPair) => inRange(p.key, cursor, end) && (regionEnd.length === 0 || Buffer.compare(p.key, regionEnd) < 0),
      );
      const locked = mine.filter((p) => p.error?.locked).map((p) => ({ lock: p.error!.locked!, key: p.key }));
      const bad = mine.find((p) => p.error && !p.error.locked);
      if (bad) throw new UnexpectedKeyError(`KvScan at ${bad.key.toString("hex")}`, bad.error!);
      if (locked.length > 0) {
        const done = await this.d.resolver.resolveAll(locked, bo);
        const l = locked[0]!;
        await bo.retry(new KeyLockedError(l.key, l.lock.lockVersion, l.lock.primaryLock, l.lock.lockTtl), done);
        continue; // scan the region again from the same cursor
      }
      for (const p of mine.slice(0, want)) out.push({ key: p.key, value: p.value });
      if (resp.pairs.length >= want && mine.length === resp.pairs.length) {
        // A full page, all of it in range: the region may hold more after its last key.
        cursor = Buffer.concat([mine[mine.length - 1]!.key, Buffer.alloc(1)]);
        continue;
      }
      if (regionEnd.length === 0 || (end.length > 0 && Buffer.compare(regionEnd, end) >= 0)) break;
      cursor = regionEnd;
    }
    return out;
  }

  /**
   * Two-phase commit. Prewrite the primary key's region batch first, then the other batches
   * concurrently; take commit_ts from the TSO; commit the primary (the commit point); then the
   * secondaries, best effort (a failure there is logged: readers resolve those locks). Throws
   * TxnConflictError when the txn cannot commit (nothing of it becomes visible) and
   * TxnUndeterminedError when the primary's commit outcome is unknown.
   */
  async commit(): Promise<void> {
    this.requireActive("commit");
    this.state = "committing";
    const muts = [...this.buffer.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    if (muts.length === 0) {
      this.state = "committed";
      return;
    }
    const primary = muts[0]!.key;
    const keys = muts.map((m) => m.key);
    const byKey = new Map(muts.map((m) => [m.key.toString("hex"), m]));
    const bo = new Backoff("txn commit", primary, this.d.policy, this.d.runtime);
    const txnBytes = muts.reduce((n, m) => n + m.key.length + m.value.length, 0);
    const keeper = new LockKeeper(
      { sender: this.d.sender, policy: this.d.policy, runtime: this.d.runtime, log: this.d.log },
      {
        primary,
        startTs: this.startTs,
        startedAtMs: this.startedAtMs,
        baseTtlMs: this.d.ttl.baseMs,
        txnBytes,
        intervalMs: this.d.ttl.heartbeatIntervalMs,
      },
    );
    try {
      await this.twoPhases(primary, keys, byKey, txnBytes, bo, keeper);
    } finally {
      keeper.stop();
    }
    this.state = "committed";
    await this.commitSecondaries(keys.slice(1));
  }

  /**
   * Prewrites every key (the primary's batch first; from then on the primary lock is kept alive by
   * heartbeats), takes commit_ts and commits the primary: the commit point.
   */
  private async twoPhases(
    primary: Buffer,
    keys: Buffer[],
    byKey: Map<string, Mutation>,
    txnBytes: number,
    bo: Backoff,
    keeper: LockKeeper,
  ): Promise<void> {
    const lockTtl = txnLockTtlMs(this.d.ttl.baseMs, txnBytes, this.d.runtime.now() - this.startedAtMs);
    try {
      const groups = await this.d.sender.group(keys, bo);
      const primaryGroup = groups.find((g) => g.keys.some((k) => k.equals(primary)))!;
      // The primary is the smallest key, so it is in the first batch of its region: that batch goes
      // alone, and from then on the heartbeat has a primary lock to keep alive while the rest follow.
      const first = splitBySize(primaryGroup.keys, this.prewriteBytes(byKey, primary))[0]!;
      const inFirst = new Set(first.map((k) => k.toString("hex")));
      await this.prewrite(first, primary, byKey, lockTtl, bo);
      keeper.start();
      const rest = keys.filter((k) => !inFirst.has(k.toString("hex")));
      if (rest.length > 0) await this.prewrite(rest, primary, byKey, lockTtl, bo);
    } catch (err) {
      this.state = "failed";
      await this.cleanup(keys, err);
      throw err;
    }

    let commitTs: bigint;
    try {
      commitTs = await this.d.tso();
    } catch (err) {
      this.state = "failed";
      await this.cleanup(keys, err);
      throw err;
    }
    try {
      await this.d.sender.onKeys(
        "KvCommit(primary)",
        [primary],
        bo,
        (t, ks) => t.rpc.kvCommit({ context: t.ctx, startVersion: this.startTs, commitVersion: commitTs, keys: ks }),
        async (_t, _ks, resp) => {
          if (resp.error)
            throw new TxnConflictError(this.startTs, "rolled-back", primary, describeKeyError(resp.error));
        },
      );
    } catch (err) {
      this.state = "failed";
      if (err instanceof TxnConflictError) {
        await this.cleanup(keys.slice(1), err);
        throw err;
      }
      throw new TxnUndeterminedError(this.startTs, commitTs, err);
    }
    this.commitTs = commitTs;
  }

  /** Commits the secondaries after the commit point, best effort: readers resolve whatever is left. */
  private async commitSecondaries(secondaries: Buffer[]): Promise<void> {
    const commitTs = this.commitTs!;
    if (secondaries.length === 0) return;
    try {
      await this.d.sender.onKeys(
        "KvCommit(secondaries)",
        secondaries,
        new Backoff("txn commit secondaries", secondaries[0], this.d.policy, this.d.runtime),
        (t, ks) => t.rpc.kvCommit({ context: t.ctx, startVersion: this.startTs, commitVersion: commitTs, keys: ks }),
        async (_t, _ks, resp) => {
          if (resp.error) throw new UnexpectedKeyError("KvCommit(secondaries)", resp.error);
        },
      );
    } catch (err) {
      this.d.log.warn(
        { start_ts: this.startTs.toString(), commit_ts: commitTs.toString(), err: errorMessage(err) },
        "committing secondaries failed; readers will resolve their locks",
      );
    }
  }

  /** Prewrites `keys` (grouped by region, concurrently), resolving finished txns' locks and waiting out live ones. */
  private async prewrite(
    keys: Buffer[],
    primary: Buffer,
    byKey: Map<string, Mutation>,
    lockTtl: bigint,
    bo: Backoff,
  ): Promise<void> {
    await this.d.sender.onKeys(
      "KvPrewrite",
      keys,
      bo,
      (t, ks) =>
        t.rpc.kvPrewrite({
          context: t.ctx,
          mutations: ks.map((k) => byKey.get(k.toString("hex"))!),
          primaryLock: primary,
          startVersion: this.startTs,
          lockTtl,
        }),
      async (_t, ks, resp) => {
        if (resp.errors.length === 0) return;
        const refused = resp.errors.find((e) => !e.locked);
        if (refused) {
          const reason = refused.conflict ? "write-conflict" : "aborted";
          throw new TxnConflictError(this.startTs, reason, refused.conflict?.key, describeKeyError(refused));
        }
        await this.d.resolver.resolveAll(
          resp.errors.map((e) => ({ lock: e.locked!, key: e.locked!.key })),
          bo,
        );
        return ks; // the request locked nothing: send the whole batch again after a backoff
      },
      this.prewriteBytes(byKey, primary),
    );
  }

  private prewriteBytes(byKey: Map<string, Mutation>, primary: Buffer): (key: Buffer) => number {
    return (k) => prewriteEntryBytes(byKey.get(k.toString("hex"))!, primary);
  }

  /** Best-effort BatchRollback of keys this txn may have locked (after a failed commit). */
  private async cleanup(keys: Buffer[], cause: unknown): Promise<void> {
    if (keys.length === 0) return;
    const bo = new Backoff(
      "txn rollback",
      keys[0],
      { ...this.d.policy, deadlineMs: Math.min(this.d.policy.deadlineMs, 5000) },
      this.d.runtime,
    );
    try {
      await this.d.sender.onKeys(
        "KvBatchRollback",
        keys,
        bo,
        (t, ks) => t.rpc.kvBatchRollback({ context: t.ctx, startVersion: this.startTs, keys: ks }),
        async (_t, _ks, resp) => {
          if (resp.error) throw new UnexpectedKeyError("KvBatchRollback", resp.error);
        },
      );
    } catch (err) {
      this.d.log.warn(
        { start_ts: this.startTs.toString(), cause: errorMessage(cause), err: errorMessage(err) },
        "rolling back a failed txn failed; its locks expire and readers resolve them",
      );
    }
  }

  /** Drops the buffered writes; nothing was sent to the stores before commit(). */
  async rollback(): Promise<void> {
    if (this.state === "rolled back" || this.state === "failed") return;
    if (this.state !== "active") throw new TxnStateError(this.startTs, this.state, "roll back");
    this.buffer.clear();
    this.state = "rolled back";
  }
}
