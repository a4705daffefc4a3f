// What the raw watch tests share: reading a RawWatch with a deadline, comparing its changes.
import { expect } from "vitest";
import type { RawWatch, RawWatchEvent } from "../../src/client/raw-watch.js";

/** A change as a test compares it: what, where (the region and index are checked apart). */
export type Seen = { type: "put" | "delete"; key: string; value?: string; expires?: boolean };

export function seenOf(ev: RawWatchEvent): Seen | undefined {
  if (ev.type === "initialized" || ev.type === "reset") return undefined;
  if (ev.type === "delete") return { type: "delete", key: ev.key.toString() };
  return {
    type: "put",
    key: ev.key.toString(),
    value: ev.value.toString(),
    ...(ev.expiresAtMs !== undefined ? { expires: true } : {}),
  };
}

/** One event, short, for a failure message. */
export function describe(e: RawWatchEvent): string {
  const at = `${e.regionId}:${e.index}`;
  if (e.type === "initialized" || e.type === "reset") return `${at} ${e.type}`;
  return `${at} ${e.type} ${e.key}${e.type === "put" ? `=${e.value.toString().slice(0, 12)}` : ""}`;
}

/**
 * Reads the watch until `done(events)` holds; returns every event. Fails with what it saw if
 * that takes longer than `timeoutMs`.
 */
export async function readUntil(
  watch: RawWatch,
  done: (events: RawWatchEvent[]) => boolean,
  timeoutMs: number,
  what: string,
  events: RawWatchEvent[] = [],
): Promise<RawWatchEvent[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const got = events.map(describe).join(", ");
      reject(new Error(`the raw watch did not deliver ${what} within ${timeoutMs} ms; it delivered: ${got}`));
    }, timeoutMs);
  });
  try {
    while (!done(events)) {
      const next = await Promise.race([watch.next(), deadline]);
      if (next.done) throw new Error(`the raw watch ended before delivering ${what}`);
      events.push(next.value);
    }
    return events;
  } finally {
    clearTimeout(timer);
  }
}

export const sawKey = (key: string) => (events: RawWatchEvent[]) =>
  events.some((e) => (e.type === "put" || e.type === "delete") && e.key.toString() === key);
export const sawInitialized = (events: RawWatchEvent[]) => events.some((e) => e.type === "initialized");

/** Each region's indexes only go up (a DeleteRange's deletes share one). */
export function expectRaftOrder(events: RawWatchEvent[]): void {
  const last = new Map<bigint, bigint>();
  for (const e of events) {
    if (e.type !== "put" && e.type !== "delete") continue;
    const before = last.get(e.regionId) ?? 0n;
    expect(e.index, `region ${e.regionId}: index ${e.index} after ${before}`).toBeGreaterThanOrEqual(before);
    last.set(e.regionId, e.index);
  }
}
