import type {
  BatchRollbackRequest,
  BatchRollbackResponse,
  CheckTxnStatusRequest,
  CheckTxnStatusResponse,
  CommitRequest,
  CommitResponse,
  GetRequest,
  GetResponse,
  PrewriteRequest,
  PrewriteResponse,
  ResolveLockRequest,
  ResolveLockResponse,
  ScanRequest,
  ScanResponse,
} from "../../proto/kvrpcpb.js";
import type { Storage } from "../storage/index.js";
import { UnimplementedError } from "./errors.js";

/** The transactional rpcs (lab 4). Placeholder until src/txn lands: each answers UNIMPLEMENTED. */
export class TxnHandlers {
  constructor(readonly storage: Storage) {}

  async kvGet(_req: GetRequest): Promise<GetResponse> {
    throw new UnimplementedError("KvGet");
  }
  async kvScan(_req: ScanRequest): Promise<ScanResponse> {
    throw new UnimplementedError("KvScan");
  }
  async kvPrewrite(_req: PrewriteRequest): Promise<PrewriteResponse> {
    throw new UnimplementedError("KvPrewrite");
  }
  async kvCommit(_req: CommitRequest): Promise<CommitResponse> {
    throw new UnimplementedError("KvCommit");
  }
  async kvCheckTxnStatus(_req: CheckTxnStatusRequest): Promise<CheckTxnStatusResponse> {
    throw new UnimplementedError("KvCheckTxnStatus");
  }
  async kvBatchRollback(_req: BatchRollbackRequest): Promise<BatchRollbackResponse> {
    throw new UnimplementedError("KvBatchRollback");
  }
  async kvResolveLock(_req: ResolveLockRequest): Promise<ResolveLockResponse> {
    throw new UnimplementedError("KvResolveLock");
  }
}
