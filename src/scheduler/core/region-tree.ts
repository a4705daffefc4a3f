import { compareBytes } from "../../util/bytes.js";
import type { RegionInfo } from "./region-info.js";

/**
 * Regions ordered by start key, for routing: lookup by key, previous region, scan, overlaps.
 * Holds non-overlapping ranges only; `put` evicts and returns whatever the new range overlaps.
 * A sorted array with binary search: lookups are O(log n), inserts O(n) (fine for 10^4-10^5 regions).
 */
export class RegionTree {
  private items: RegionInfo[] = [];

  get length(): number {
    return this.items.length;
  }

  /** Inserts `region`, removing every region whose range overlaps it. Returns the removed ones. */
  put(region: RegionInfo): RegionInfo[] {
    const removed = this.overlaps(region.meta.startKey, region.meta.endKey);
    if (removed.length > 0) {
      const first = this.items.indexOf(removed[0]!);
      this.items.splice(first, removed.length);
    }
    const at = this.upperBound(region.meta.startKey);
    this.items.splice(at, 0, region);
    return removed;
  }

  /** Removes the entry for this exact region id if it is in the tree. */
  remove(region: RegionInfo): boolean {
    const i = this.indexOfStart(region.meta.startKey);
    if (i >= 0 && this.items[i]!.meta.id === region.meta.id) {
      this.items.splice(i, 1);
      return true;
    }
    return false;
  }

  /** The region whose range contains `key`, if any. */
  search(key: Uint8Array): RegionInfo | undefined {
    const i = this.containingIndex(key);
    return i >= 0 ? this.items[i] : undefined;
  }

  /** The region just before the one containing `key` (undefined if either is missing or not adjacent). */
  searchPrev(key: Uint8Array): RegionInfo | undefined {
    const i = this.containingIndex(key);
    if (i <= 0) return undefined;
    const prev = this.items[i - 1]!;
    return compareBytes(prev.meta.endKey, this.items[i]!.meta.startKey) === 0 ? prev : undefined;
  }

  /** Regions overlapping [start, end) in key order (empty end = +inf). */
  overlaps(start: Uint8Array, end: Uint8Array): RegionInfo[] {
    let i = this.upperBound(start) - 1;
    if (i < 0 || !endsAfter(this.items[i]!, start)) i++;
    const out: RegionInfo[] = [];
    for (; i < this.items.length; i++) {
      const r = this.items[i]!;
      if (end.length > 0 && compareBytes(r.meta.startKey, end) >= 0) break;
      out.push(r);
    }
    return out;
  }

  /** Up to `limit` regions (<= 0 = all) from the one containing `start` while start < end. */
  scan(start: Uint8Array, end: Uint8Array, limit: number): RegionInfo[] {
    const out = this.overlaps(start, end);
    return limit > 0 ? out.slice(0, limit) : out;
  }

  all(): RegionInfo[] {
    return [...this.items];
  }

  /** Index of the first item whose start key is > key. */
  private upperBound(key: Uint8Array): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.items[mid]!.meta.startKey, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOfStart(key: Uint8Array): number {
    const i = this.upperBound(key) - 1;
    return i >= 0 && compareBytes(this.items[i]!.meta.startKey, key) === 0 ? i : -1;
  }

  private containingIndex(key: Uint8Array): number {
    const i = this.upperBound(key) - 1;
    return i >= 0 && endsAfter(this.items[i]!, key) ? i : -1;
  }
}

/** True when the region's end is after `key` (i.e. key < end, or end is +inf). */
function endsAfter(r: RegionInfo, key: Uint8Array): boolean {
  return r.meta.endKey.length === 0 || compareBytes(key, r.meta.endKey) < 0;
}
