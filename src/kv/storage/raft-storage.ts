import type { Context } from "../../proto/kvrpcpb.js";
import type { Region } from "../../proto/metapb.js";
import type { RaftRequestHeader, Request } from "../../proto/raft_cmdpb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { conditionalWriteCommand, conditionalWriteOutcome } from "./raft-conditional.js";
import type { CfCursor, CfName, EngineSnapshot } from "../engine/index.js";
import type { Store } from "../raftstore/store.js";
import { keyInRegion, regionCursor, regionKeyRange } from "../raftstore/keyspace.js";
import { InvalidArgumentError, RaftEntryTooLargeError, RegionError } from "./errors.js";
import type { ConditionalOutcome, ConditionalWrite, Modify, ReaderOptions, Storage, StorageReader } from "./storage.js";

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
  for (const m of batch) bound += modifyBytes(m) + m.cf.length + REQUEST_OVERHEAD_BYTES;
  if (bound <= limit) return;
  const size = RaftCmdRequest.encode(cmd).finish().length;
  if (size > limit) throw new RaftEntryTooLargeError(cmd.header!.regionId, size, limit);
}

function modifyBytes(m: Modify): number {
  if (m.kind === "deleteRange") return m.start.length + m.end.length;
  return m.key.length + (m.kind === "put" ? m.value.length : 0);
}

/** The raft_cmdpb request of one change: plain literals, as this is the write hot path. */
function requestOf(m: Modify): Request {
  switch (m.kind) {
    case "put":
      return {
        cmdType: CmdType.Put,
        put: { cf: m.cf, key: m.key, value: m.value },
        get: undefined,
        delete: undefined,
        snap: undefined,
        deleteRange: undefined,
      };
    case "delete":
      return {
        cmdType: CmdType.Delete,
        delete: { cf: m.cf, key: m.key },
        get: undefined,
        put: undefined,
        snap: undefined,
        deleteRange: undefined,
      };
    case "deleteRange":
      return {
        cmdType: CmdType.DeleteRange,
        deleteRange: { cf: m.cf, startKey: m.start, endKey: m.end },
        get: undefined,
        put: undefined,
        delete: undefined,
        snap: undefined,
      };
  }
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
    const requests: Request[] = batch.map(requestOf);
    // A plain object, not fromPartial: this is the write hot path and fromPartial deep-copies.
    const cmd: RaftCmdRequest = { header, requests, adminRequest: undefined };
    checkEntrySize(cmd, batch, this.store.config.raftEntryMaxSize);
    const resp = await this.store.propose(cmd);
    if (resp.header?.error)
      throw RegionError.fromPb(resp.header.error, {
        term: resp.header.currentTerm === 0n ? undefined : resp.header.currentTerm,
      });
  }

  /** One entry whose apply compares and writes (src/kv/raftstore/conditional-write.ts). */
  async conditionalWrite(ctx: Context | undefined, cw: ConditionalWrite): Promise<ConditionalOutcome> {
    const cmd = conditionalWriteCommand(headerOf(ctx), cw);
    const compared: Modify = { kind: "put", cf: cw.cf, key: cw.key, value: cw.expected ?? Buffer.alloc(0) };
    checkEntrySize(cmd, [...cw.writes, compared], this.store.config.raftEntryMaxSize);
    const resp = await this.store.propose(cmd);
    if (resp.header?.error)
      throw RegionError.fromPb(resp.header.error, {
        term: resp.header.currentTerm === 0n ? undefined : resp.header.currentTerm,
      });
    return conditionalWriteOutcome(resp);
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

  iterCF(cf: CfName, opts: { reverse?: boolean } = {}): CfCursor {
    if (!opts.reverse) return regionCursor(this.snap, cf, this.region);
    const { lower, upper } = regionKeyRange(cf, this.region);
    return this.snap.cursor(cf, lower, upper, undefined, true);
  }

  close(): Promise<void> {
    return this.snap.close();
  }
}
