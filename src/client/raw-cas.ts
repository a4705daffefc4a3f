import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { KvConnection } from "./kv-connection.js";
import { KvRequestError } from "./errors.js";
import { KvOutcomeUnknownError } from "./outcome.js";
import type { Backoff, RequestSender } from "./request.js";

/** What a compare-and-swap expects the key to hold now. */
export type CasExpectation = { value: Buffer } | { notExist: true };

export interface CasResult {
  /** The new value (or the delete) was written. */
  succeed: boolean;
  /** What the key held when compared (undefined: absent or expired), whether or not it swapped. */
  previous: Buffer | undefined;
}

function connectionLacks(op: string, addr: string): KvRequestError {
  return new KvRequestError(op, addr, "this connection has no such rpc (a client built without it)");
}

/**
 * UNAVAILABLE comes both for a call that never left (no connection: gRPC's picker says "No
 * connection established") and for one whose connection dropped after it was sent, say when the
 * leader died after applying it. Only the first is safe to send again: a resent swap that already
 * applied would fail against its own new value and report "not swapped".
 */
function answerLostAfterSend(err: unknown): boolean {
  const e = err as Partial<ServiceError> | undefined;
  return e?.code === status.UNAVAILABLE && !String(e.details ?? "").includes("No connection established");
}

/**
 * RawCompareAndSwap on the key's region leader: writes `value` (undefined: deletes the key) if
 * the key holds what `expect` says. A write like put: retried while it surely did not apply, and
 * KvOutcomeUnknownError when it may have (read the key to learn what happened).
 */
export async function compareAndSwap(
  sender: RequestSender,
  bo: Backoff,
  req: { key: Buffer; value: Buffer | undefined; expect: CasExpectation; cf: string; ttlSeconds?: number },
): Promise<CasResult> {
  const call = {
    key: req.key,
    value: req.value ?? Buffer.alloc(0),
    delete: req.value === undefined,
    previousNotExist: "notExist" in req.expect,
    previousValue: "value" in req.expect ? req.expect.value : Buffer.alloc(0),
    cf: req.cf,
    ttl: BigInt(req.ttlSeconds ?? 0),
  };
  const { resp, target } = await sender.onKey(
    "RawCompareAndSwap",
    req.key,
    bo,
    async (t) => {
      const rpc: KvConnection = t.rpc;
      if (!rpc.rawCompareAndSwap) throw connectionLacks("RawCompareAndSwap", t.addr);
      try {
        return await rpc.rawCompareAndSwap({ context: t.ctx, ...call });
      } catch (err) {
        if (answerLostAfterSend(err)) throw new KvOutcomeUnknownError("RawCompareAndSwap", req.key, t.addr, err);
        throw err;
      }
    },
    { once: true },
  );
  if (resp.error) throw new KvRequestError("RawCompareAndSwap", target.addr, resp.error);
  return { succeed: resp.succeed, previous: resp.previousNotExist ? undefined : resp.previousValue };
}

/** Seconds the key has left: 0 when it never expires, undefined when it is absent or expired. */
export async function keyTtl(sender: RequestSender, bo: Backoff, key: Buffer, cf: string): Promise<number | undefined> {
  const { resp, target } = await sender.onKey("RawGetKeyTTL", key, bo, (t) => {
    const rpc: KvConnection = t.rpc;
    if (!rpc.rawGetKeyTtl) throw connectionLacks("RawGetKeyTTL", t.addr);
    return rpc.rawGetKeyTtl({ context: t.ctx, key, cf });
  });
  if (resp.error) throw new KvRequestError("RawGetKeyTTL", target.addr, resp.error);
  return resp.notFound ? undefined : Number(resp.ttl);
}
