/**
 * What the simulated clients do, through the real KvClient: registers (raw puts, gets, deletes,
 * compare-and-swaps and range deletes, each outcome classified for the linearizability checker)
 * and a bank (transfers in transactions, snapshot reads of every account, for the bank checker).
 */
import type { KvClient } from "../../../src/client/index.js";
import { KvDeadlineError, TxnConflictError, TxnUndeterminedError } from "../../../src/client/index.js";
import type { Rng } from "../../../src/util/random.js";
import { errorMessage } from "../../../src/util/retry.js";
import type { BankRead, RegisterOperation, Value } from "../checkers/index.js";
import type { SimRuntime } from "./sim-runtime.js";

const REGISTER_PREFIX = "reg/";
/** Register values are padded so a few keys fill a small region: splits happen. */
const REGISTER_PAD = "x".repeat(120);

/**
 * Raw puts and gets of registers. A put is "ok" when acknowledged, "failed" when the client
 * proved it never applied (KvDeadlineError: every attempt was refused or not delivered), and
 * "unknown" otherwise (KvOutcomeUnknownError: StaleCommand or no answer; anything unexpected).
 */
export class RegisterWorkload {
  readonly history: RegisterOperation[] = [];
  readonly keys: string[];
  private seq = 0;

  constructor(
    private readonly runtime: SimRuntime,
    keys: number,
    /** Register client 2's reads are replica reads (followers serve them); the checker holds them to linearizability too. */
    private readonly replicaReads = false,
  ) {
    this.keys = Array.from({ length: keys }, (_, i) => `k${i}`);
  }

  /**
   * `ttlSeconds`: the put expires then. The registers' model has no expiry, so a run gives only
   * ttls far beyond its end: they exercise the expiry CF (written with the value, compared by a
   * CAS, removed by a delete or range delete) without ever expiring.
   */
  async put(
    c: number,
    client: KvClient,
    key: string,
    value = `c${c}-${++this.seq}`,
    ttlSeconds?: number,
  ): Promise<RegisterOperation> {
    const op: RegisterOperation = {
      client: c,
      kind: "put",
      key,
      value,
      call: this.runtime.elapsedMs,
      outcome: "unknown",
    };
    this.history.push(op);
    try {
      await client.put(REGISTER_PREFIX + key, value + REGISTER_PAD, "", ttlSeconds ? { ttlSeconds } : {});
      op.outcome = "ok";
      op.return = this.runtime.elapsedMs;
    } catch (err) {
      op.outcome = err instanceof KvDeadlineError ? "failed" : "unknown";
      this.runtime.note(`c${c} put ${key}: ${errorMessage(err)}`);
    }
    this.runtime.note(`c${c} put ${key}=${value} ${op.outcome}`);
    return op;
  }

  /** Like put: "failed" only when the client proved it never applied. */
  async delete(c: number, client: KvClient, key: string): Promise<RegisterOperation> {
    const op: RegisterOperation = { client: c, kind: "delete", key, call: this.runtime.elapsedMs, outcome: "unknown" };
    this.history.push(op);
    try {
      await client.delete(REGISTER_PREFIX + key);
      op.outcome = "ok";
      op.return = this.runtime.elapsedMs;
    } catch (err) {
      op.outcome = err instanceof KvDeadlineError ? "failed" : "unknown";
      this.runtime.note(`c${c} delete ${key}: ${errorMessage(err)}`);
    }
    this.runtime.note(`c${c} delete ${key} ${op.outcome}`);
    return op;
  }

  /**
   * A swap from `expected` (null: the key must be absent) to a fresh value. What the key held
   * when compared is also recorded as a read over the same interval: the swap's comparison and
   * that read can take effect at the same moment.
   */
  async cas(c: number, client: KvClient, key: string, expected: Value): Promise<RegisterOperation> {
    const value = `c${c}-${++this.seq}`;
    const op: RegisterOperation = {
      client: c,
      kind: "cas",
      key,
      expected,
      value,
      call: this.runtime.elapsedMs,
      outcome: "unknown",
    };
    this.history.push(op);
    try {
      const res = await client.compareAndSwap(
        REGISTER_PREFIX + key,
        value + REGISTER_PAD,
        expected === null ? { notExist: true } : { value: expected + REGISTER_PAD },
      );
      op.outcome = "ok";
      op.return = this.runtime.elapsedMs;
      op.swapped = res.succeed;
      const held = res.previous === undefined ? null : unpad(res.previous);
      this.history.push({ client: c, kind: "get", key, value: held, call: op.call, return: op.return, outcome: "ok" });
    } catch (err) {
      op.outcome = err instanceof KvDeadlineError ? "failed" : "unknown";
      this.runtime.note(`c${c} cas ${key}: ${errorMessage(err)}`);
    }
    this.runtime.note(
      `c${c} cas ${key} ${expected ?? "nil"}->${value} ${op.outcome}${op.swapped === false ? " not swapped" : ""}`,
    );
    return op;
  }

  /**
   * Deletes [from, to) with RawDeleteRange: one delete of each register in it, all over the same
   * interval (the registers are checked one by one, so a range is as many deletes).
   */
  async deleteRange(c: number, client: KvClient, from: string, to: string): Promise<void> {
    const [start, end] = [REGISTER_PREFIX + from, REGISTER_PREFIX + to];
    const covered = this.keys.filter((k) => REGISTER_PREFIX + k >= start && REGISTER_PREFIX + k < end);
    const call = this.runtime.elapsedMs;
    const ops: RegisterOperation[] = covered.map((key) => ({
      client: c,
      kind: "delete",
      key,
      call,
      outcome: "unknown",
    }));
    this.history.push(...ops);
    let outcome: RegisterOperation["outcome"] = "unknown";
    try {
      await client.deleteRange(start, end);
      outcome = "ok";
    } catch (err) {
      // A range over several regions may have applied in some of them: only a range that never
      // left the client is "failed", and deleteRange does not tell which; so: unknown.
      this.runtime.note(`c${c} delete-range ${from}..${to}: ${errorMessage(err)}`);
    }
    for (const op of ops) {
      op.outcome = outcome;
      if (outcome === "ok") op.return = this.runtime.elapsedMs;
    }
    this.runtime.note(`c${c} delete-range ${from}..${to} (${covered.join(",")}) ${outcome}`);
  }

  async get(c: number, client: KvClient, key: string): Promise<RegisterOperation> {
    const op: RegisterOperation = { client: c, kind: "get", key, call: this.runtime.elapsedMs, outcome: "unknown" };
    try {
      const v = await client.get(REGISTER_PREFIX + key, "", { replicaRead: this.replicaReads && c % 4 === 2 });
      op.value = v === undefined ? null : unpad(v);
      op.outcome = "ok";
      op.return = this.runtime.elapsedMs;
      // A failed read tells nothing: only successful ones go into the history.
      this.history.push(op);
    } catch (err) {
      this.runtime.note(`c${c} get ${key}: ${errorMessage(err)}`);
    }
    this.runtime.note(`c${c} get ${key} ${op.outcome}${op.outcome === "ok" ? `=${op.value ?? "nil"}` : ""}`);
    return op;
  }

  async step(c: number, client: KvClient, rng: Rng): Promise<void> {
    const pick = () => this.keys[Math.floor(rng() * this.keys.length)]!;
    const key = pick();
    const roll = rng();
    if (roll < 0.3) await this.put(c, client, key);
    else if (roll < 0.45) await this.put(c, client, key, undefined, NEVER_EXPIRES_IN_A_RUN_S);
    else if (roll < 0.55) await this.delete(c, client, key);
    else if (roll < 0.7) await this.cas(c, client, key, this.lastSeen(key));
    else if (roll < 0.73) {
      const [a, b] = [key, pick()].sort();
      await this.deleteRange(c, client, a!, b === a ? `${a}\u0000` : b!);
    } else await this.get(c, client, key);
  }

  /** The value the key held in the latest ok operation that says (a swap's expectation, often stale on purpose). */
  private lastSeen(key: string): Value {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const op = this.history[i]!;
      if (op.key !== key || op.outcome !== "ok") continue;
      if (op.kind === "get" || op.kind === "put") return op.value ?? null;
      if (op.kind === "delete") return null;
      if (op.kind === "cas" && op.swapped) return op.value ?? null;
    }
    return null;
  }
}

/** A ttl no simulated run reaches (runs last about a minute of simulated time). */
const NEVER_EXPIRES_IN_A_RUN_S = 24 * 3600;

function unpad(v: Buffer): string {
  return v.toString().slice(0, v.length - REGISTER_PAD.length);
}

export interface BankStats {
  committed: number;
  conflicts: number;
  undetermined: number;
  failed: number;
}

/** Transfers between accounts in transactions; every snapshot read must sum to the total. */
export class BankWorkload {
  readonly accounts: string[];
  readonly total: number;
  readonly reads: BankRead[] = [];
  readonly stats: BankStats = { committed: 0, conflicts: 0, undetermined: 0, failed: 0 };

  constructor(
    private readonly runtime: SimRuntime,
    accounts: number,
    private readonly initialBalance = 100,
  ) {
    this.accounts = Array.from({ length: accounts }, (_, i) => `acct${i}`);
    this.total = accounts * initialBalance;
  }

  private key(account: string): string {
    return `bank/${account}`;
  }

  /** Opens every account in one transaction; tries until it commits or `deadlineMs` passes. */
  async open(client: KvClient, deadlineMs: number): Promise<boolean> {
    const until = this.runtime.elapsedMs + deadlineMs;
    while (this.runtime.elapsedMs < until) {
      try {
        const t = await client.begin();
        for (const a of this.accounts) t.put(this.key(a), String(this.initialBalance));
        await t.commit();
        return true;
      } catch (err) {
        // Undetermined: a read decides; open() is only ever run before any transfer, so a retry that
        // writes the same balances again is harmless.
        this.runtime.note(`bank open: ${errorMessage(err)}`);
      }
    }
    return false;
  }

  async transfer(c: number, client: KvClient, rng: Rng): Promise<void> {
    const from = this.accounts[Math.floor(rng() * this.accounts.length)]!;
    const to =
      this.accounts[
        (this.accounts.indexOf(from) + 1 + Math.floor(rng() * (this.accounts.length - 1))) % this.accounts.length
      ]!;
    const want = 1 + Math.floor(rng() * 20);
    try {
      const t = await client.begin();
      const a = Number((await t.get(this.key(from)))?.toString() ?? "NaN");
      const b = Number((await t.get(this.key(to)))?.toString() ?? "NaN");
      const amount = Math.min(want, a);
      if (!(amount > 0) || Number.isNaN(b)) {
        await t.rollback();
        return;
      }
      t.put(this.key(from), String(a - amount));
      t.put(this.key(to), String(b + amount));
      await t.commit();
      this.stats.committed++;
      this.runtime.note(`c${c} transfer ${amount} ${from}->${to} committed`);
    } catch (err) {
      if (err instanceof TxnConflictError) this.stats.conflicts++;
      else if (err instanceof TxnUndeterminedError) this.stats.undetermined++;
      else this.stats.failed++;
      this.runtime.note(`c${c} transfer ${from}->${to}: ${errorMessage(err)}`);
    }
  }

  /** Reads every account in one snapshot; undefined when the read did not finish. */
  async read(c: number, client: KvClient): Promise<BankRead | undefined> {
    try {
      const t = await client.begin();
      const balances: Record<string, number> = {};
      for (const a of this.accounts) {
        const v = await t.get(this.key(a));
        // A missing account is recorded as missing: the checker reports it.
        if (v !== undefined) balances[a] = Number(v.toString());
      }
      await t.rollback();
      return { client: c, at: this.runtime.elapsedMs, balances };
    } catch (err) {
      this.runtime.note(`c${c} bank read: ${errorMessage(err)}`);
      return undefined;
    }
  }

  async step(c: number, client: KvClient, rng: Rng): Promise<void> {
    if (rng() < 0.7) {
      await this.transfer(c, client, rng);
      return;
    }
    const r = await this.read(c, client);
    if (r) this.reads.push(r);
  }
}
