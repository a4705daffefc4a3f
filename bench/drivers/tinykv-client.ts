import { KvClient, TxnConflictError } from "../../src/client/index.js";
import type { Driver, DriverOptions } from "./types.js";
import { BenchOpError } from "./types.js";

function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1]! += 1;
  return b;
}

/**
 * tinykv through the client library (src/client): region cache, retries within the operation
 * deadline (--timeout-ms), Percolator transactions. The library opens one gRPC channel per store
 * per worker thread (grpc-js's default shared subchannel pool), so --channels does not apply; on
 * it, one BatchCommands stream, or unary rpcs with `batchCommands: false` (--tinykv-driver client-unary).
 */
export class TinyKvClientDriver implements Driver {
  readonly name = "tinykv";
  private readonly end: Buffer;

  private constructor(
    private readonly c: KvClient,
    opts: DriverOptions,
  ) {
    this.end = prefixEnd(opts.keyPrefix);
  }

  static async connect(opts: DriverOptions, lib: { batchCommands: boolean }): Promise<TinyKvClientDriver> {
    const c = await KvClient.connect({
      scheduler: opts.endpoints,
      batchCommands: lib.batchCommands,
      timeoutMs: opts.timeoutMs,
      rpcTimeoutMs: Math.min(3000, opts.timeoutMs),
    });
    return new TinyKvClientDriver(c, opts);
  }

  put(key: Buffer, value: Buffer): Promise<void> {
    return this.c.put(key, value);
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.c.get(key);
  }

  /** RawBatchPut through the client: split by region, one raft command per region. */
  batchPut(pairs: { key: Buffer; value: Buffer }[]): Promise<void> {
    return this.c.batchPut(pairs);
  }

  async scan(start: Buffer, limit: number): Promise<number> {
    return (await this.c.scan(start, this.end, limit)).length;
  }

  /** get + put of one key in one transaction; the new value carries an incremented counter. */
  async rmw(key: Buffer, value: Buffer): Promise<void> {
    const txn = await this.c.begin();
    try {
      const old = await txn.get(key);
      const next = Buffer.allocUnsafe(value.length);
      value.copy(next);
      if (old && old.length >= 8 && next.length >= 8) next.writeBigUInt64BE(old.readBigUInt64BE(0) + 1n, 0);
      txn.put(key, next);
      await txn.commit();
    } catch (err) {
      if (err instanceof TxnConflictError) throw new BenchOpError(`txn conflict: ${err.reason}`, err.message);
      throw err;
    }
  }

  close(): void {
    this.c.close();
  }
}
