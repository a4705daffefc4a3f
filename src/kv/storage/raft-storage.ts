import type { Context } from "../../proto/kvrpcpb.js";
import type { Region } from "../../proto/metapb.js";
import type { RaftRequestHeader, Request } from "../../proto/raft_cmdpb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { CfCursor, CfName, EngineSnapshot } from "../engine/index.js";
import type { Store } from "../raftstore/store.js";
import { keyInRegion, regionCursor } from "../raftstore/keyspace.js";
import { InvalidArgumentError, RaftEntryTooLargeError, RegionError } from "./errors.js";
import type { Modify, ReaderOptions, Storage, StorageReader } from "./storage.js";

function headerOf(ctx: Context | undefined): RaftRequestHeader {
  if (!ctx || ctx.regionId === 0n)
    throw new InvalidArgumentError("request context must name a region (context.region_id): this store runs Raft");
  return { regionId: ctx.regionId, peer: ctx.peer, regionEpoch: ctx.regionEpoch, term: ctx.term };
}

/** Protobuf framing of one put/delete request (tags, lengths, cmd type, cf): a safe upper bound. */
const REQUEST_OVERHEAD_BYTES = 40;
const HEADER_OVERHEAD_BYTES = 128;

/**
 * Refuses a command that would make a raft entry over `limit` bytes: one such entry would
 * stall replication for every region sharing the stores' streams. The exact encoding is only
 * computed when the cheap upper bound says it may be over, so the hot path encodes once.
 */
function checkEntrySize(cmd: RaftCmdRequest, batch: Modify[], limit: number): void {
  let bound = HEADER_OVERHEAD_BYTES;
  for (const m of batch)
    bound += m.key.length + m.cf.length + REQUEST_OVERHEAD_BYTES + (m.kind === "put" ? m.value.length : 0);
  if (bound <= limit) return;
  const size = RaftCmdRequest.encode(cmd).finish().length;
  if (size > limit) throw new RaftEntryTooLargeError(cmd.header!.regionId, size, limit);
}

/**
 * Storage through Raft: writes are proposed to the region's leader and resolve once applied;
 * readers are linearizable (ReadIndex), bound to the region's key range.
 */
export class RaftStorage implements Storage {
  constructor(private readonly store: Store) {}

  async start(): Promise<void> {
    // The store's lifecycle belongs to the node that owns it.
  }

  async stop(): Promise<void> {
    // See start().
  }

  async write(ctx: Context | undefined, batch: Modify[]): Promise<void> {
    const header = headerOf(ctx);
    const requests: Request[] = batch.map((m) =>
      m.kind === "put"
        ? {
            cmdType: CmdType.Put,
            put: { cf: m.cf, key: m.key, value: m.value },
            get: undefined,
            delete: undefined,
            snap: undefined,
          }
        : {
            cmdType: CmdType.Delete,
            delete: { cf: m.cf, key: m.key },
            get: undefined,
            put: undefined,
            snap: undefined,
          },
    );
    // A plain object, not fromPartial: this is the write hot path and fromPartial deep-copies.
    const cmd: RaftCmdRequest = { header, requests, adminRequest: undefined };
    checkEntrySize(cmd, batch, this.store.config.raftEntryMaxSize);
    const resp = await this.store.propose(cmd);
    if (resp.header?.error)
      throw RegionError.fromPb(resp.header.error, {
        term: resp.header.currentTerm === 0n ? undefined : resp.header.currentTerm,
      });
  }

  async reader(ctx: Context | undefined, opts: ReaderOptions = {}): Promise<StorageReader> {
    const header = headerOf(ctx);
    if (ctx?.staleRead && opts.readTs === undefined)
      throw new InvalidArgumentError(
        "context.stale_read needs a read timestamp (KvGet/KvScan version); raw keys have none: use replica_read",
      );
    const outcome = await this.store.read(header, {
      replica: ctx?.replicaRead === true,
      staleTs: ctx?.staleRead ? opts.readTs : undefined,
    });
    if ("error" in outcome) throw RegionError.fromPb(outcome.error);
    return new RegionReader(outcome.snapshot, outcome.region);
  }
}

/** A reader over a kv snapshot limited to one region: a key outside it is a KeyNotInRegion error. */
export class RegionReader implements StorageReader {
  constructor(
    private readonly snap: EngineSnapshot,
    readonly region: Region,
  ) {}

  async getCF(cf: CfName, key: Uint8Array): Promise<Buffer | undefined> {
    if (!keyInRegion(cf, Buffer.from(key.buffer, key.byteOffset, key.byteLength), this.region)) {
      throw RegionError.keyNotInRegion(Buffer.from(key), this.region);
    }
    return this.snap.get(cf, key);
  }

  iterCF(cf: CfName): CfCursor {
    return regionCursor(this.snap, cf, this.region);
  }

  close(): Promise<void> {
    return this.snap.close();
  }
}
