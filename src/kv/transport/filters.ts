import type { RaftMessage } from "../../proto/raft_serverpb.js";
import type { Rng } from "../../util/random.js";

/** One message on its way through the simulated network; filters may change how it is delivered. */
export interface Envelope {
  readonly msg: RaftMessage;
  readonly from: bigint;
  readonly to: bigint;
  readonly isSnapshot: boolean;
  /** Delay before delivery in ms (filters add to it). Ordered messages never overtake each other. */
  delayMs: number;
  /** Set by `reorder`: this message may overtake or be overtaken by others on the same link. */
  unordered: boolean;
  /** How many times to deliver it (`duplicate`); snapshots are always delivered at most once. */
  copies: number;
}

/** Returns false to drop the message (the sender sees it as unreachable, as in TinyKV's harness). */
export type MessageFilter = (env: Envelope, rng: Rng) => boolean;

function checkProbability(what: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${what}: probability must be in [0, 1], got ${p}`);
}

function checkRange(what: string, minMs: number, maxMs: number): void {
  if (!(minMs >= 0 && maxMs >= minMs)) throw new RangeError(`${what}: need 0 <= min <= max, got [${minMs}, ${maxMs}]`);
}

/** Drops messages across the two sides (TinyKV's PartitionFilter: either end in A and either end in B). */
export function partition(storesA: Iterable<bigint>, storesB: Iterable<bigint>): MessageFilter {
  const a = new Set(storesA);
  const b = new Set(storesB);
  return (env) => !((a.has(env.from) || a.has(env.to)) && (b.has(env.from) || b.has(env.to)));
}

/** Drops everything from and to one store. */
export function isolate(storeId: bigint): MessageFilter {
  return (env) => env.from !== storeId && env.to !== storeId;
}

/** Drops each message with probability p (TinyKV's DropFilter is p ≈ 0.1). */
export function dropRate(p: number): MessageFilter {
  checkProbability("dropRate", p);
  return (_env, rng) => rng() >= p;
}

/** Drops the messages matching a predicate (e.g. one message type, one direction). */
export function dropWhere(pred: (env: Envelope) => boolean): MessageFilter {
  return (env) => !pred(env);
}

/** Applies `filter` only to the messages matching `pred`; the rest pass untouched. */
export function onlyWhere(pred: (env: Envelope) => boolean, filter: MessageFilter): MessageFilter {
  return (env, rng) => !pred(env) || filter(env, rng);
}

/** Delays every message by a uniform [minMs, maxMs]; order on each link is kept. */
export function delay(minMs: number, maxMs: number = minMs): MessageFilter {
  checkRange("delay", minMs, maxMs);
  return (env, rng) => {
    env.delayMs += minMs + rng() * (maxMs - minMs);
    return true;
  };
}

/** Delivers each message after a random [0, maxJitterMs] of its own, so messages overtake each other. */
export function reorder(maxJitterMs = 10): MessageFilter {
  checkRange("reorder", 0, maxJitterMs);
  return (env, rng) => {
    env.unordered = true;
    env.delayMs += rng() * maxJitterMs;
    return true;
  };
}

/** Delivers an extra copy of each message with probability p. */
export function duplicate(p: number): MessageFilter {
  checkProbability("duplicate", p);
  return (env, rng) => {
    if (rng() < p) env.copies += 1;
    return true;
  };
}
