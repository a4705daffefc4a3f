import { holdsRequestField } from "./entry-fields.js";
import type { Entry } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import type { ConditionalWriteRequest, RaftCmdResponse, Response } from "../../proto/raft_cmdpb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import type { CfName, Engine, WriteBatch } from "../engine/index.js";
import { cfKey, parseCf } from "../engine/index.js";
import { errorResponse, regionErrors } from "./errors.js";
import { keyInRegion } from "./keyspace.js";

/**
 * Conditional writes (raw CAS, the TTL sweep): "if cf/key holds X (or nothing) then these puts
 * and deletes". The comparison happens at apply, inside the entry's own turn, so every replica
 * decides it identically and no other write to the key can come between the comparison and the
 * write. Apply is synchronous, so the store loop reads the compared keys before a turn's apply
 * (prefetchConditionalReads) and apply keeps them current as earlier entries of the same turn
 * write them (ConditionalReads.wrote).
 */

/** 8-byte big-endian milliseconds since the epoch: how an expiry is stored. */
export function decodeExpiry(stored: Buffer | undefined): number | undefined {
  if (stored === undefined || stored.length !== 8) return undefined;
  return Number(stored.readBigUInt64BE(0));
}

export function encodeExpiry(atMs: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(atMs))));
  return out;
}

/** The value a comparison sees: a value whose expiry is at or before `nowMs` counts as absent. */
export function liveValue(value: Buffer | undefined, expiry: Buffer | undefined, nowMs: number): Buffer | undefined {
  if (value === undefined) return undefined;
  const at = decodeExpiry(expiry);
  return at !== undefined && at <= nowMs ? undefined : value;
}

/** Whether `current` matches what the request expects. */
export function conditionHolds(current: Buffer | undefined, expectAbsent: boolean, expected: Uint8Array): boolean {
  if (expectAbsent) return current === undefined;
  return current !== undefined && Buffer.compare(current, expected) === 0;
}

const CONDITIONAL_WRITE_FIELD = 100;

/**
 * Whether an entry's command holds a conditional write, by walking its wire tags (no decode, no
 * allocation): every turn asks this of every entry, and nearly none do. Undecodable data answers
 * false; apply refuses such an entry itself.
 */
export function holdsConditionalWrite(entry: Entry): boolean {
  return holdsRequestField(entry, CONDITIONAL_WRITE_FIELD);
}

function slot(cf: CfName, key: Uint8Array): string {
  return cfKey(cf, key).toString("latin1");
}

/** The current values of the keys a turn's conditional writes compare, kept current as the turn applies. */
export class ConditionalReads {
  private readonly values = new Map<string, Buffer | undefined>();

  watched(cf: CfName, key: Uint8Array): boolean {
    return this.values.has(slot(cf, key));
  }

  read(cf: CfName, key: Uint8Array): Buffer | undefined {
    const s = slot(cf, key);
    if (!this.values.has(s))
      throw new Error(`conditional write: ${cf}/${Buffer.from(key).toString("hex")} was not read before the apply`);
    return this.values.get(s);
  }

  /** An entry of this turn wrote the key (undefined: deleted it). */
  wrote(cf: CfName, key: Uint8Array, value: Buffer | undefined): void {
    const s = slot(cf, key);
    if (this.values.has(s)) this.values.set(s, value);
  }

  set(cf: CfName, key: Uint8Array, value: Buffer | undefined): void {
    this.values.set(slot(cf, key), value);
  }
}

/**
 * Reads, from the kv engine as the previous turn left it, the keys that the conditional writes
 * among `entries` compare; undefined when there are none (the usual turn: nothing is read).
 */
export async function prefetchConditionalReads(kv: Engine, entries: Entry[]): Promise<ConditionalReads | undefined> {
  const wanted: Array<{ cf: CfName; key: Buffer }> = [];
  for (const entry of entries) {
    if (!holdsConditionalWrite(entry)) continue;
    let requests: RaftCmdRequest["requests"];
    try {
      requests = RaftCmdRequest.decode(entry.data).requests;
    } catch (err) {
      void err; // apply answers the entry with the decode error, on every replica alike
      continue;
    }
    for (const r of requests) {
      const cw = r.conditionalWrite;
      if (!cw) continue;
      try {
        wanted.push({ cf: parseCf(cw.cf), key: cw.key });
        if (cw.expiryCf !== "") wanted.push({ cf: parseCf(cw.expiryCf), key: cw.key });
      } catch (err) {
        // An unknown CF: apply answers the entry with an error and reads nothing.
        void err;
      }
    }
  }
  if (wanted.length === 0) return undefined;
  const reads = new ConditionalReads();
  const values = await Promise.all(wanted.map((w) => kv.get(w.cf, w.key)));
  wanted.forEach((w, i) => {
    reads.set(w.cf, w.key, values[i]);
  });
  return reads;
}

/**
 * Applies one conditional write to the batch: compares, then writes its puts and deletes if the
 * comparison holds. Its keys must all be in the region (checked here: the generic key check
 * only knows top-level puts and deletes).
 */
export function applyConditionalWrite(
  cw: ConditionalWriteRequest,
  region: Region,
  kvWb: WriteBatch,
  reads: ConditionalReads | undefined,
): { response?: Response; error?: RaftCmdResponse; writtenBytes: number } {
  const refused = (error: RaftCmdResponse) => ({ error, writtenBytes: 0 });
  let cf: CfName;
  let expiryCf: CfName | undefined;
  try {
    cf = parseCf(cw.cf);
    expiryCf = cw.expiryCf === "" ? undefined : parseCf(cw.expiryCf);
    for (const k of [{ cf: cw.cf, key: cw.key }, ...cw.writes.map((w) => w.put ?? w.delete)]) {
      if (!k)
        return refused(
          errorResponse(regionErrors.other("conditional write: only puts and deletes may be conditional")),
        );
      if (!keyInRegion(parseCf(k.cf), k.key, region))
        return refused(errorResponse(regionErrors.keyNotInRegion(k.key, region)));
    }
  } catch (err) {
    // An unknown CF in a logged command: refuse the entry on every replica alike, never stop the store.
    return refused(errorResponse(regionErrors.other(`conditional write: ${(err as Error).message}`)));
  }
  if (!reads) throw new Error(`conditional write in region ${region.id} reached apply without its reads`);
  const stored = reads.read(cf, cw.key);
  const current = expiryCf === undefined ? stored : liveValue(stored, reads.read(expiryCf, cw.key), Number(cw.nowMs));
  const succeed = conditionHolds(current, cw.expectAbsent, cw.expectedValue);
  let writtenBytes = 0;
  if (succeed) {
    for (const w of cw.writes) {
      if (w.put) {
        const wcf = parseCf(w.put.cf);
        kvWb.put(wcf, w.put.key, w.put.value);
        reads.wrote(wcf, w.put.key, w.put.value);
        writtenBytes += w.put.key.length + w.put.value.length;
      } else if (w.delete) {
        const wcf = parseCf(w.delete.cf);
        kvWb.delete(wcf, w.delete.key);
        reads.wrote(wcf, w.delete.key, undefined);
      }
    }
  }
  const response: Response = {
    cmdType: CmdType.ConditionalWrite,
    conditionalWrite: {
      succeed,
      previousNotExist: current === undefined,
      previousValue: current ?? Buffer.alloc(0),
    },
  };
  return { response, writtenBytes };
}
