/**
 * A client of a simulated TestCluster (no scheduler, no src/client): raw puts and gets of small registers through RaftStorage
 * (as TestCluster.put/get do), on the simulation's clock, recording what it learnt about each
 * operation for the checkers. A write is retried only after an error that proves it was never
 * proposed; once it may be in a log (StaleCommand, a timeout, a store gone mid-request) its
 * outcome is "unknown" and it is not retried, since a late duplicate would look like a stale write.
 */
import { CF_DEFAULT } from "../../../src/kv/engine/index.js";
import { RaftStorage, RegionError, rawKeyspace } from "../../../src/kv/storage/index.js";
import type { Context } from "../../../src/proto/kvrpcpb.js";
import { sleep } from "../../../src/util/runtime.js";
import type { TestCluster } from "../../harness/cluster.js";
import type { RegisterOperation } from "../checkers/index.js";
import type { SimRuntime } from "../runner/sim-runtime.js";

/** One attempt on one store may hang (a partitioned leader keeps a proposal): it gives up after this. */
const ATTEMPT_TIMEOUT_MS = 1_000;
const BACKOFF_MS = { first: 10, max: 200 };

type AttemptResult<T> =
  | { kind: "ok"; value: T }
  | { kind: "retry"; reason: string }
  | { kind: "unknown"; reason: string };

const TIMED_OUT = Symbol("timed out");

export class SimClient {
  constructor(
    private readonly cluster: TestCluster,
    private readonly runtime: SimRuntime,
    readonly history: RegisterOperation[],
  ) {}

  /** Writes `value` to `key`; records and returns the outcome. */
  async put(client: number, key: string, value: string, deadlineMs: number): Promise<RegisterOperation> {
    const op: RegisterOperation = { client, kind: "put", key, value, call: this.runtime.elapsedMs, outcome: "failed" };
    this.history.push(op);
    const k = Buffer.from(key);
    const result = await this.onLeader(k, deadlineMs, (s, ctx) =>
      rawKeyspace(s).write(ctx, [{ kind: "put", cf: CF_DEFAULT, key: k, value: Buffer.from(value) }]),
    );
    if (result.kind === "ok") {
      op.outcome = "ok";
      op.return = this.runtime.elapsedMs;
    } else op.outcome = result.kind === "unknown" ? "unknown" : "failed";
    this.runtime.note(`c${client} put ${key}=${value} ${op.outcome}`);
    return op;
  }

  /** Reads `key`; records it when it succeeded (a failed read tells nothing). */
  async get(client: number, key: string, deadlineMs: number): Promise<RegisterOperation> {
    const op: RegisterOperation = { client, kind: "get", key, call: this.runtime.elapsedMs, outcome: "unknown" };
    const k = Buffer.from(key);
    const result = await this.onLeader(k, deadlineMs, async (s, ctx) => {
      const reader = await rawKeyspace(s).reader(ctx);
      try {
        return (await reader.getCF(CF_DEFAULT, k)) ?? null;
      } finally {
        await reader.close();
      }
    });
    if (result.kind === "ok") {
      op.outcome = "ok";
      op.value = result.value === null ? null : result.value.toString();
      op.return = this.runtime.elapsedMs;
      this.history.push(op);
    }
    this.runtime.note(`c${client} get ${key} ${op.outcome}${op.outcome === "ok" ? `=${op.value ?? "nil"}` : ""}`);
    return op;
  }

  private async onLeader<T>(
    key: Buffer,
    deadlineMs: number,
    op: (storage: RaftStorage, ctx: Context) => Promise<T>,
  ): Promise<AttemptResult<T> | { kind: "failed" }> {
    const deadline = this.runtime.elapsedMs + deadlineMs;
    let backoff = BACKOFF_MS.first;
    let hint: bigint | undefined;
    while (this.runtime.elapsedMs < deadline) {
      const region = this.cluster.regionFor(key);
      if (region) {
        const storeId =
          hint ??
          this.cluster.leaderOf(region.id) ??
          region.peers[Math.floor(this.runtime.random() * region.peers.length)]!.storeId;
        hint = undefined;
        const store = this.cluster.store(storeId);
        if (store) {
          const ctx: Context = {
            regionId: region.id,
            regionEpoch: region.regionEpoch,
            peer: store.peerMeta(region.id),
            term: 0n,
          };
          const r = await this.attempt(() => op(new RaftStorage(store), ctx));
          if (r.kind !== "retry") return r;
          hint = r.hint;
        }
      }
      await sleep(this.runtime, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MS.max);
    }
    return { kind: "failed" };
  }

  private async attempt<T>(run: () => Promise<T>): Promise<AttemptResult<T> & { hint?: bigint }> {
    let timer: object | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = this.runtime.setTimeout(() => resolve(TIMED_OUT), ATTEMPT_TIMEOUT_MS);
    });
    try {
      const value = await Promise.race([run(), timeout]);
      if (value === TIMED_OUT) return { kind: "unknown", reason: "attempt timed out" };
      return { kind: "ok", value: value as T };
    } catch (err) {
      if (!(err instanceof RegionError))
        return { kind: "unknown", reason: err instanceof Error ? err.message : String(err) };
      if (err.pb.staleCommand) return { kind: "unknown", reason: err.message };
      const leader = err.pb.notLeader?.leader;
      return { kind: "retry", reason: err.message, hint: leader && leader.storeId !== 0n ? leader.storeId : undefined };
    } finally {
      this.runtime.clearTimeout(timer);
    }
  }
}
