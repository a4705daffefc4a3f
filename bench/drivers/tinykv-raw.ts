import { setTimeout as sleep } from "node:timers/promises";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import type { Peer, Region } from "../../src/proto/metapb.js";
import type { Error as RegionError } from "../../src/proto/errorpb.js";
import type { Context, KeyError } from "../../src/proto/kvrpcpb.js";
import { Op } from "../../src/proto/kvrpcpb.js";
import type { Driver, DriverOptions } from "./types.js";
import { BenchOpError, CHANNEL_OPTIONS } from "./types.js";

/**
 * tinykv through raw TinyKv rpcs plus a small region cache (region -> leader -> store address),
 * used until the client library (src/client) is available; the swap is in drivers/index.ts.
 * Region errors (not leader, epoch mismatch, ...) refresh the cache and retry, at most
 * MAX_ATTEMPTS times and never past the request deadline.
 */
const MAX_ATTEMPTS = 6;
const LOCK_TTL_MS = 3000n;

interface Loc {
  region: Region;
  leader: Peer;
  addr: string;
}

function inRegion(r: Region, key: Buffer): boolean {
  return Buffer.compare(r.startKey, key) <= 0 && (r.endKey.length === 0 || Buffer.compare(key, r.endKey) < 0);
}

function keyErrorLabel(e: KeyError): string {
  if (e.locked) return "txn: key locked";
  if (e.conflict) return "txn: write conflict";
  if (e.abort) return `txn: abort ${e.abort.slice(0, 40)}`;
  if (e.retryable) return `txn: retryable ${e.retryable.slice(0, 40)}`;
  return "txn: key error";
}

class RegionRetry extends Error {}

export class TinyKvRawDriver implements Driver {
  readonly name = "tinykv";
  private readonly locs: Loc[] = [];
  private readonly storeAddrs = new Map<bigint, string>();
  private readonly rpcs = new Map<string, { list: TinyKvRpc[]; next: number }>();
  private readonly pending = new Map<string, Promise<Loc>>();

  private constructor(
    private readonly sched: SchedulerRpcClient,
    private readonly opts: DriverOptions,
  ) {}

  static async connect(opts: DriverOptions): Promise<TinyKvRawDriver> {
    const sched = await SchedulerRpcClient.connect(opts.endpoints, {
      timeoutMs: Math.min(2000, opts.timeoutMs),
      retryDeadlineMs: opts.timeoutMs,
    });
    return new TinyKvRawDriver(sched, opts);
  }

  private rpc(addr: string): TinyKvRpc {
    let e = this.rpcs.get(addr);
    if (!e) {
      e = { list: [], next: 0 };
      for (let c = 0; c < this.opts.channels; c++)
        e.list.push(new TinyKvRpc(addr, this.opts.timeoutMs, { ...CHANNEL_OPTIONS, "bench.channel": c }));
      this.rpcs.set(addr, e);
    }
    return e.list[e.next++ % e.list.length]!;
  }

  private async storeAddr(storeId: bigint): Promise<string> {
    let a = this.storeAddrs.get(storeId);
    if (!a) {
      a = (await this.sched.getStore(storeId)).store.address;
      this.storeAddrs.set(storeId, a);
    }
    return a;
  }

  private async locate(key: Buffer): Promise<Loc> {
    for (const l of this.locs) if (inRegion(l.region, key)) return l;
    // One scheduler lookup per key in flight; concurrent misses for the same key share it.
    const k = key.toString("latin1");
    let p = this.pending.get(k);
    if (!p) {
      p = (async () => {
        const r = await this.sched.getRegion(key);
        if (!r) throw new RegionRetry("scheduler knows no region for the key");
        if (!r.leader) throw new RegionRetry("region has no leader yet");
        const loc = { region: r.region, leader: r.leader, addr: await this.storeAddr(r.leader.storeId) };
        this.forget(r.region);
        this.locs.push(loc);
        return loc;
      })().finally(() => this.pending.delete(k));
      this.pending.set(k, p);
    }
    return p;
  }

  private forget(region: Region): void {
    for (let i = this.locs.length - 1; i >= 0; i--) {
      const r = this.locs[i]!.region;
      if (
        r.id === region.id ||
        ((Buffer.compare(r.startKey, region.endKey) < 0 || region.endKey.length === 0) &&
          (r.endKey.length === 0 || Buffer.compare(region.startKey, r.endKey) < 0))
      )
        this.locs.splice(i, 1);
    }
  }

  /** Handles a region error: updates the cache; the caller retries. */
  private async onRegionError(loc: Loc, e: RegionError): Promise<void> {
    if (e.notLeader?.leader && e.notLeader.leader.id !== 0n) {
      const leader = e.notLeader.leader;
      const i = this.locs.indexOf(loc);
      if (i >= 0) this.locs[i] = { region: loc.region, leader, addr: await this.storeAddr(leader.storeId) };
      return;
    }
    const i = this.locs.indexOf(loc);
    if (i >= 0) this.locs.splice(i, 1);
  }

  /** Runs `fn` against the leader of `key`'s region, retrying region errors within the deadline. */
  private async withRegion<R extends { regionError?: RegionError | undefined }>(
    key: Buffer,
    fn: (rpc: TinyKvRpc, ctx: Context, loc: Loc) => Promise<R>,
  ): Promise<R> {
    const deadline = Date.now() + this.opts.timeoutMs;
    let last = "";
    for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < deadline; attempt++) {
      if (attempt > 0) await sleep(Math.min(20 * 2 ** (attempt - 1), Math.max(0, deadline - Date.now())));
      let loc: Loc;
      try {
        loc = await this.locate(key);
      } catch (err) {
        last = (err as Error).message;
        continue;
      }
      const ctx: Context = { regionId: loc.region.id, regionEpoch: loc.region.regionEpoch, peer: loc.leader, term: 0n };
      let res: R;
      try {
        res = await fn(this.rpc(loc.addr), ctx, loc);
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 14 /* UNAVAILABLE */) {
          this.forget(loc.region);
          last = "store unavailable";
          continue;
        }
        throw err;
      }
      if (!res.regionError) return res;
      const e = res.regionError;
      last = e.notLeader
        ? "not leader"
        : e.epochNotMatch
          ? "epoch not match"
          : e.regionNotFound
            ? "region not found"
            : e.keyNotInRegion
              ? "key not in region"
              : e.staleCommand
                ? "stale command"
                : e.message.slice(0, 40) || "region error";
      await this.onRegionError(loc, e);
    }
    throw new BenchOpError(`region: ${last}`, `gave up after retries: ${last}`);
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    const res = await this.withRegion(key, (rpc, context) => rpc.rawPut({ context, key, value, cf: "default" }));
    if (res.error) throw new BenchOpError(`put: ${res.error.slice(0, 40)}`, res.error);
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const res = await this.withRegion(key, (rpc, context) => rpc.rawGet({ context, key, cf: "default" }));
    if (res.error) throw new BenchOpError(`get: ${res.error.slice(0, 40)}`, res.error);
    return res.notFound ? undefined : res.value;
  }

  async scan(start: Buffer, limit: number): Promise<number> {
    const res = await this.withRegion(start, (rpc, context, loc) =>
      rpc.rawScan({ context, startKey: start, limit, cf: "default", endKey: loc.region.endKey }),
    );
    if (res.error) throw new BenchOpError(`scan: ${res.error.slice(0, 40)}`, res.error);
    return res.kvs.length;
  }

  /** Percolator read-modify-write of one key (primary = the key): get@start_ts, prewrite, commit. */
  async rmw(key: Buffer, value: Buffer): Promise<void> {
    const startTs = await this.sched.tso();
    const g = await this.withRegion(key, (rpc, context) => rpc.kvGet({ context, key, version: startTs }));
    if (g.error) throw new BenchOpError(keyErrorLabel(g.error), "get failed");
    const next = Buffer.allocUnsafe(value.length);
    value.copy(next);
    if (g.value.length >= 8) next.writeBigUInt64BE(g.value.readBigUInt64BE(0) + 1n, 0);
    const p = await this.withRegion(key, (rpc, context) =>
      rpc.kvPrewrite({
        context,
        mutations: [{ op: Op.Put, key, value: next }],
        primaryLock: key,
        startVersion: startTs,
        lockTtl: LOCK_TTL_MS,
      }),
    );
    if (p.errors.length > 0) {
      await this.withRegion(key, (rpc, context) =>
        rpc.kvBatchRollback({ context, startVersion: startTs, keys: [key] }),
      ).catch(() => {});
      throw new BenchOpError(keyErrorLabel(p.errors[0]!), "prewrite failed");
    }
    const commitTs = await this.sched.tso();
    const c = await this.withRegion(key, (rpc, context) =>
      rpc.kvCommit({ context, startVersion: startTs, keys: [key], commitVersion: commitTs }),
    );
    if (c.error) throw new BenchOpError(keyErrorLabel(c.error), "commit failed");
  }

  /** Waits until the key's region has `replicas` peers and a leader that answers a raw put. */
  async waitReady(replicas: number, deadlineMs: number, probeKey: Buffer): Promise<{ storeId: bigint; addr: string }> {
    const deadline = Date.now() + deadlineMs;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const r = await this.sched.getRegion(probeKey);
        if (!r) last = "no region yet";
        else if (r.region.peers.length < replicas) last = `region has ${r.region.peers.length}/${replicas} peers`;
        else if (!r.leader) last = "no leader yet";
        else {
          await this.put(probeKey, Buffer.from("ready"));
          const r2 = await this.sched.getRegion(probeKey);
          const leader = r2?.leader ?? r.leader;
          return { storeId: leader.storeId, addr: await this.storeAddr(leader.storeId) };
        }
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(250);
    }
    throw new Error(`tinykv cluster not ready after ${deadlineMs} ms: ${last}`);
  }

  close(): void {
    for (const e of this.rpcs.values()) for (const r of e.list) r.close();
    this.sched.close();
  }
}
