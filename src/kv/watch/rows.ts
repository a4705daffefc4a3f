import type { Error as CdcError, Event_Row } from "../../proto/cdcpb.js";
import { Event_LogType, Event_Row_OpType } from "../../proto/cdcpb.js";
import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { Region } from "../../proto/metapb.js";
import { CF_DEFAULT, CF_LOCK, CF_WRITE } from "../engine/index.js";
import type { EngineSnapshot } from "../engine/index.js";
import { RaftApplyState, RegionLocalState } from "../../proto/raft_serverpb.js";
import { applyStateKey, regionStateKey } from "../raftstore/keys.js";
import { decodeTimestamp, decodeUserKey, encodeBytes, encodeKey } from "../../txn/codec.js";
import { Lock, Write, WriteKind } from "../../txn/records.js";
import { keyInRange } from "../../util/bytes.js";

/** The key range a feed delivers: the request's range within the region's (empty end: no bound). */
export interface KeySpan {
  start: Buffer;
  end: Buffer;
}

export function clipToRegion(span: KeySpan, region: Region): KeySpan {
  const start = Buffer.compare(span.start, region.startKey) >= 0 ? span.start : region.startKey;
  let end = span.end;
  if (region.endKey.length > 0 && (end.length === 0 || Buffer.compare(region.endKey, end) < 0)) end = region.endKey;
  return { start, end };
}

export function spanIsEmpty(span: KeySpan): boolean {
  return span.end.length > 0 && Buffer.compare(span.start, span.end) >= 0;
}

/** A stored commit record as the row a watcher sees; undefined for rollbacks (no change) and keys outside. */
export async function rowOf(
  storedKey: Buffer,
  record: Buffer,
  span: KeySpan,
  type: Event_LogType,
  readValue: (key: Buffer, startTs: bigint) => Promise<Buffer | undefined>,
): Promise<Event_Row | undefined> {
  const key = decodeUserKey(storedKey);
  if (!keyInRange(key, span.start, span.end)) return undefined;
  const write = Write.parse(record);
  if (write.kind === WriteKind.Rollback) return undefined;
  const commitTs = decodeTimestamp(storedKey);
  const put = write.kind === WriteKind.Put;
  const value = put ? await readValue(key, write.startTs) : undefined;
  if (put && value === undefined)
    throw new Error(
      `change feed: key ${key.toString("hex")} committed at ${commitTs} has no value at start_ts ${write.startTs}`,
    );
  return {
    startTs: write.startTs,
    commitTs,
    type,
    opType: put ? Event_Row_OpType.PUT : Event_Row_OpType.DELETE,
    key,
    value: value ?? Buffer.alloc(0),
    previousValue: Buffer.alloc(0),
    expireTsUnixSecs: 0n,
    expiresAtMs: 0n,
  };
}

export function valueReader(snap: Pick<EngineSnapshot, "get">) {
  return (key: Buffer, startTs: bigint) => snap.get(CF_DEFAULT, encodeKey(key, startTs));
}

/** The region state and applied index a kv snapshot holds: what its data is the result of. */
export async function appliedStateIn(
  snap: EngineSnapshot,
  regionId: bigint,
): Promise<{ region: Region; appliedIndex: bigint } | undefined> {
  const regionBytes = await snap.getMeta(regionStateKey(regionId));
  const applyBytes = await snap.getMeta(applyStateKey(regionId));
  if (!regionBytes || !applyBytes) return undefined;
  const region = RegionLocalState.decode(regionBytes).region;
  if (!region) return undefined;
  return { region, appliedIndex: RaftApplyState.decode(applyBytes).appliedIndex };
}

/**
 * Rows whose keys and values reach this many bytes are sent as one event, the next ones in
 * another: one row is at most a max-size key and value, so an event stays under the gRPC ceiling.
 */
export const MAX_EVENT_ROW_BYTES = 4 << 20;

/** A row's bytes as MAX_EVENT_ROW_BYTES counts them. */
export function rowBytes(row: Event_Row): number {
  return row.key.length + row.value.length + 64;
}

/**
 * Every commit record in `span` with commit_ts > afterTs, as COMMITTED rows, in pages of
 * `pageRows` rows, or fewer once they reach MAX_EVENT_ROW_BYTES.
 */
export async function* scanCommitted(
  snap: EngineSnapshot,
  span: KeySpan,
  afterTs: bigint,
  pageRows: number,
): AsyncGenerator<Event_Row[]> {
  const cursor = snap.cursor(
    CF_WRITE,
    encodeBytes(span.start),
    span.end.length === 0 ? span.end : encodeBytes(span.end),
  );
  const readValue = valueReader(snap);
  try {
    let page: Event_Row[] = [];
    let bytes = 0;
    for (await cursor.seek(encodeBytes(span.start)); cursor.valid; await cursor.next()) {
      if (decodeTimestamp(cursor.key) <= afterTs) continue;
      const row = await rowOf(cursor.key, cursor.value, span, Event_LogType.COMMITTED, readValue);
      if (!row) continue;
      page.push(row);
      bytes += rowBytes(row);
      if (page.length >= pageRows || bytes >= MAX_EVENT_ROW_BYTES) {
        yield page;
        page = [];
        bytes = 0;
      }
    }
    if (page.length > 0) yield page;
  } finally {
    await cursor.close();
  }
}

/** The smallest start_ts of the locks in `span`: a txn holding one may still commit above it. */
export async function minLockTs(snap: EngineSnapshot, span: KeySpan): Promise<bigint | undefined> {
  const cursor = snap.cursor(CF_LOCK, span.start, span.end);
  let min: bigint | undefined;
  try {
    for (await cursor.seek(span.start); cursor.valid; await cursor.next()) {
      const ts = Lock.parse(cursor.value).ts;
      if (min === undefined || ts < min) min = ts;
    }
  } finally {
    await cursor.close();
  }
  return min;
}

export function feedError(message: string, pb: Partial<CdcError>): CdcError {
  return { message, ...pb };
}

/** A region error of the raftstore as the feed's error (the kinds a watcher acts on). */
export function feedErrorOf(regionId: bigint, pb: RegionErrorPb): CdcError {
  if (pb.notLeader) return feedError(pb.message, { notLeader: pb.notLeader });
  if (pb.epochNotMatch) return feedError(pb.message, { epochNotMatch: pb.epochNotMatch });
  if (pb.regionNotFound) return feedError(pb.message, { regionNotFound: pb.regionNotFound });
  // Anything else (store stopping, key not in region): the watcher re-resolves the region and resumes.
  return feedError(pb.message, { regionNotFound: { regionId } });
}
