/**
 * The clients' side of the simulated network: a KvConnection per store address ("store<id>")
 * that calls the store's real TinyKv service handlers (createTinyKvService over RawHandlers and
 * TxnHandlers on RaftStorage) in the same process. A call crosses the link with a delay from the
 * runtime each way; a store that is down is UNAVAILABLE (the request was not delivered); an
 * answer lost to a crash, or later than the rpc deadline, is DEADLINE_EXCEEDED (it may have
 * applied), as a real gRPC client would see it.
 */
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { KvConnection, KvConnectionFactory } from "../../../src/client/index.js";
import { createTinyKvService, RawHandlers, TxnHandlers } from "../../../src/kv/server/index.js";
import type { Store } from "../../../src/kv/raftstore/index.js";
import { RaftStorage } from "../../../src/kv/storage/index.js";
import * as kv from "../../../src/proto/kvrpcpb.js";
import type { TinyKvServer } from "../../../src/proto/tinykvpb.js";
import { DEFAULT_TXN_BOUNDS } from "../../../src/txn/index.js";
import type { Logger } from "../../../src/util/logger.js";
import type { Runtime } from "../../../src/util/runtime.js";
import { sleep } from "../../../src/util/runtime.js";

/** The address a simulated store is reached at. */
export function simStoreAddr(storeId: bigint): string {
  return `store${storeId}`;
}

interface Served {
  store: Store;
  service: TinyKvServer;
}

type UnaryHandler<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

/** An error as grpc-js reports a failed call: a status code and details. */
function grpcFailure(code: status, details: string): Error & { code: status; details: string } {
  return Object.assign(new Error(`${status[code]}: ${details}`), { code, details });
}

export class SimKvNetwork {
  /** One service per store life: its latches must be shared by every client of that store. */
  private readonly served = new Map<bigint, Served>();
  calls = 0;

  constructor(
    private readonly runtime: Runtime,
    /** The running store of an id, or undefined while it is down. */
    private readonly storeOf: (id: bigint) => Store | undefined,
    private readonly log: Logger,
    private readonly latencyMs: () => number = () => 1 + Math.floor(runtime.random() * 4),
  ) {}

  readonly connect: KvConnectionFactory = (addr, timeoutMs) => this.connection(addr, timeoutMs);

  private serviceOf(id: bigint): Served | undefined {
    const store = this.storeOf(id);
    if (!store || store.stopped) return undefined;
    let s = this.served.get(id);
    if (s?.store !== store) {
      const storage = new RaftStorage(store);
      const service = createTinyKvService({
        // Raw TTL expiry follows the store's own (virtual, maybe skewed) clock, as a real leader's would.
        raw: new RawHandlers(storage, store.runtime),
        txn: new TxnHandlers(storage, { ...DEFAULT_TXN_BOUNDS, clock: this.runtime }),
        log: this.log,
      });
      s = { store, service };
      this.served.set(id, s);
    }
    return s;
  }

  private call<Req, Res>(
    addr: string,
    id: bigint,
    timeoutMs: number,
    pick: (s: TinyKvServer) => UnaryHandler<Req, Res>,
    req: Req,
  ): Promise<Res> {
    this.calls++;
    return new Promise<Res>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        this.runtime.clearTimeout(deadline);
        fn();
      };
      const deadline = this.runtime.setTimeout(
        () =>
          settle(() => reject(grpcFailure(status.DEADLINE_EXCEEDED, `no answer from ${addr} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      void sleep(this.runtime, this.latencyMs()).then(() => {
        const served = this.serviceOf(id);
        if (!served) return settle(() => reject(grpcFailure(status.UNAVAILABLE, `${addr} is down`)));
        pick(served.service)({ request: req } as ServerUnaryCall<Req, Res>, (err, res) => {
          void sleep(this.runtime, this.latencyMs()).then(() => {
            // The answer of a store that crashed meanwhile never arrives: the deadline tells.
            if (this.storeOf(id) !== served.store || served.store.stopped) return;
            if (err) settle(() => reject(grpcFailure(err.code ?? status.UNKNOWN, err.details ?? String(err))));
            else settle(() => resolve(res!));
          });
        });
      });
    });
  }

  private connection(addr: string, timeoutMs: number): KvConnection {
    const id = BigInt(addr.replace(/^store/, ""));
    const c = <Req, Res>(pick: (s: TinyKvServer) => UnaryHandler<Req, Res>, req: Req) =>
      this.call(addr, id, timeoutMs, pick, req);
    return {
      addr,
      rawGet: (r) => c((s) => s.rawGet, kv.RawGetRequest.fromPartial(r)),
      rawPut: (r) => c((s) => s.rawPut, kv.RawPutRequest.fromPartial(r)),
      rawDelete: (r) => c((s) => s.rawDelete, kv.RawDeleteRequest.fromPartial(r)),
      rawScan: (r) => c((s) => s.rawScan, kv.RawScanRequest.fromPartial(r)),
      kvGet: (r) => c((s) => s.kvGet, kv.GetRequest.fromPartial(r)),
      kvScan: (r) => c((s) => s.kvScan, kv.ScanRequest.fromPartial(r)),
      kvPrewrite: (r) => c((s) => s.kvPrewrite, kv.PrewriteRequest.fromPartial(r)),
      kvCommit: (r) => c((s) => s.kvCommit, kv.CommitRequest.fromPartial(r)),
      kvCheckTxnStatus: (r) => c((s) => s.kvCheckTxnStatus, kv.CheckTxnStatusRequest.fromPartial(r)),
      kvBatchRollback: (r) => c((s) => s.kvBatchRollback, kv.BatchRollbackRequest.fromPartial(r)),
      kvResolveLock: (r) => c((s) => s.kvResolveLock, kv.ResolveLockRequest.fromPartial(r)),
      kvTxnHeartBeat: (r) => c((s) => s.kvTxnHeartBeat, kv.TxnHeartBeatRequest.fromPartial(r)),
      rawBatchGet: (r) => c((s) => s.rawBatchGet, kv.RawBatchGetRequest.fromPartial(r)),
      rawBatchPut: (r) => c((s) => s.rawBatchPut, kv.RawBatchPutRequest.fromPartial(r)),
      rawBatchDelete: (r) => c((s) => s.rawBatchDelete, kv.RawBatchDeleteRequest.fromPartial(r)),
      rawDeleteRange: (r) => c((s) => s.rawDeleteRange, kv.RawDeleteRangeRequest.fromPartial(r)),
      rawCompareAndSwap: (r) => c((s) => s.rawCompareAndSwap, kv.RawCASRequest.fromPartial(r)),
      rawGetKeyTtl: (r) => c((s) => s.rawGetKeyTtl, kv.RawGetKeyTTLRequest.fromPartial(r)),
      close: () => undefined,
    };
  }
}
