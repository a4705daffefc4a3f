/**
 * Raw scans across regions, forward and reverse (RawScan with TiKV's reverse semantics). Neither
 * is a snapshot across regions: each region is read at its own moment.
 */
import type { KvPair, RawScanResponse } from "../proto/kvrpcpb.js";
import { KvRequestError } from "./errors.js";
import type { ReadRouting } from "./read-options.js";
import type { RpcTarget } from "./region-cache.js";
import type { Backoff, RequestSender } from "./request.js";
import { ScanPage } from "./request.js";
import { clipEnd } from "./raw-batch.js";
import type { KvEntry } from "./txn.js";

/** Pairs per RawScan request: a page stays far below the servers' scan limit and gRPC's message limit. */
const RAW_SCAN_PAGE = 1024;

/**
 * Up to `limit` pairs with start <= key < end (empty end = no end) in key order, region by
 * region: each region is scanned up to min(end, region end), then the scan goes on at the
 * region's end key. Not a snapshot across regions.
 */
export async function forwardScanAcrossRegions(
  sender: RequestSender,
  routing: ReadRouting,
  start: Buffer,
  end: Buffer,
  limit: number,
  cf: string,
  bo: Backoff,
): Promise<KvEntry[]> {
  const out: KvEntry[] = [];
  if (end.length > 0 && Buffer.compare(start, end) >= 0) return out;
  let cursor = start;
  const page = new ScanPage(RAW_SCAN_PAGE);
  while (out.length < limit) {
    const want = Math.min(limit - out.length, page.size);
    let answer: Awaited<ReturnType<typeof sender.onKey<RawScanResponse>>>;
    try {
      answer = await sender.onKey(
        "RawScan",
        cursor,
        bo,
        (t) => {
          const regionEnd = t.region.endKey;
          const stop =
            regionEnd.length > 0 && (end.length === 0 || Buffer.compare(regionEnd, end) < 0) ? regionEnd : end;
          return t.rpc.rawScan({ context: t.ctx, startKey: cursor, endKey: stop, limit: want, cf });
        },
        { route: routing.route },
      );
    } catch (err) {
      if (page.shrink(err)) continue;
      throw err;
    }
    const { resp, target } = answer;
    if (resp.error) throw new KvRequestError("RawScan", target.addr, resp.error);
    const regionEnd = target.region.endKey;
    for (const kv of resp.kvs) {
      if (out.length >= limit) break;
      if (Buffer.compare(kv.key, cursor) < 0) continue;
      if (regionEnd.length > 0 && Buffer.compare(kv.key, regionEnd) >= 0) continue;
      if (end.length > 0 && Buffer.compare(kv.key, end) >= 0) continue;
      out.push(scanned(kv));
    }
    const last = resp.kvs[resp.kvs.length - 1];
    const pageFull = resp.kvs.length >= want && last !== undefined;
    if (
      pageFull &&
      (regionEnd.length === 0 || Buffer.compare(last.key, regionEnd) < 0) &&
      (end.length === 0 || Buffer.compare(last.key, end) < 0)
    ) {
      // A full page: the region may hold more after its last key.
      cursor = Buffer.concat([last.key, Buffer.alloc(1)]);
      continue;
    }
    if (regionEnd.length === 0 || (end.length > 0 && Buffer.compare(regionEnd, end) >= 0)) break;
    cursor = regionEnd;
  }
  return out;
}

/**
 * Up to `limit` pairs with lower <= key < upper (empty upper: no end) in DESCENDING key order.
 * Windows of the range are kept on a stack, highest on top: a window is scanned once its lower
 * key's region covers all of it; otherwise it is split at that region's end and the upper part
 * goes first. A full page leaves the window below its last key for the next round. Region
 * errors re-route the window by its lower key. Not a snapshot across regions.
 */
export async function reverseScanAcrossRegions(
  sender: RequestSender,
  upper: Buffer,
  lower: Buffer,
  limit: number,
  cf: string,
  routing: ReadRouting,
  bo: Backoff,
): Promise<KvEntry[]> {
  const out: KvEntry[] = [];
  if (upper.length > 0 && Buffer.compare(lower, upper) >= 0) return out;
  const windows: { lo: Buffer; hi: Buffer }[] = [{ lo: lower, hi: upper }];
  const page = new ScanPage(RAW_SCAN_PAGE);
  const covers = (t: RpcTarget, hi: Buffer) =>
    t.region.endKey.length === 0 || (hi.length > 0 && Buffer.compare(t.region.endKey, hi) >= 0);
  while (out.length < limit) {
    const w = windows.pop();
    if (!w) break;
    const located = await sender.locate(w.lo, bo);
    if (!covers(located, w.hi)) {
      windows.push({ lo: w.lo, hi: located.region.endKey }, { lo: located.region.endKey, hi: w.hi });
      continue;
    }
    const want = Math.min(limit - out.length, page.size);
    let answer: Awaited<ReturnType<typeof sender.onKey<RawScanResponse>>>;
    try {
      answer = await sender.onKey(
        "RawScan",
        w.lo,
        bo,
        (t) =>
          t.rpc.rawScan({
            context: t.ctx,
            startKey: clipEnd(w.hi, t.region.endKey),
            endKey: w.lo,
            limit: want,
            cf,
            reverse: true,
          }),
        { route: routing.route },
      );
    } catch (err) {
      if (page.shrink(err)) {
        windows.push(w);
        continue;
      }
      throw err;
    }
    const { resp, target } = answer;
    if (resp.error) throw new KvRequestError("RawScan", target.addr, resp.error);
    if (!covers(target, w.hi)) {
      // The region split between the lookup and the answer: its upper part has keys to come first.
      windows.push({ lo: w.lo, hi: target.region.endKey }, { lo: target.region.endKey, hi: w.hi });
      continue;
    }
    const kvs = resp.kvs.filter(
      (kv) => Buffer.compare(kv.key, w.lo) >= 0 && (w.hi.length === 0 || Buffer.compare(kv.key, w.hi) < 0),
    );
    for (const kv of kvs.slice(0, limit - out.length)) out.push(scanned(kv));
    const last = resp.kvs[resp.kvs.length - 1];
    if (resp.kvs.length >= want && last && Buffer.compare(last.key, w.lo) > 0) windows.push({ lo: w.lo, hi: last.key });
  }
  return out;
}

/** A scanned pair, with its expiry when it has one (servers before it was answered never set it). */
function scanned(kv: KvPair): KvEntry {
  const entry: KvEntry = { key: kv.key, value: kv.value };
  if (kv.expiresAtMs > 0n) entry.expiresAtMs = Number(kv.expiresAtMs);
  return entry;
}
