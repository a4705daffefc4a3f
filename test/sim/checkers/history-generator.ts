// Test support: seeded random histories that are linearizable by construction, and seeded
// mutations that make them provably non-linearizable. Each op gets a linearization point inside
// its [call, return] interval (an op with an unknown outcome: anywhere after its call, or none),
// and the outputs come from running a sequential register model in linearization-point order.
// Written values are unique per history (unless asked otherwise), which is what makes the
// mutations provably illegal.
import type { Rng } from "../../../src/util/random.js";
import { mulberry32 } from "../../../src/util/random.js";
import type { OperationKind, RegisterOperation, Value } from "./history.js";
import { writtenValue } from "./history.js";

export interface GeneratorOptions {
  seed: number;
  operations: number;
  keys: number;
  clients: number;
  /** Share of ops whose outcome is unknown (half of those take effect, possibly late). */
  unknownRate?: number;
  /** Share of ops reported failed (they never take effect). */
  failedRate?: number;
  /** Longest op latency, in time units. */
  maxLatency?: number;
  /** Draw written values from this many per key instead of unique ones (then only for must-pass). */
  repeatedValues?: number;
}

interface Planned {
  op: RegisterOperation;
  /** When it takes effect; undefined: never. */
  point?: number;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

function chooseKind(rng: Rng): OperationKind {
  const r = rng();
  return r < 0.45 ? "get" : r < 0.8 ? "put" : r < 0.9 ? "cas" : "delete";
}

/** A linearizable history of put/get/delete/cas over `keys` registers by `clients` clients. */
export function generateLinearizableHistory(options: GeneratorOptions): RegisterOperation[] {
  const rng = mulberry32(options.seed);
  const unknownRate = options.unknownRate ?? 0.05;
  const failedRate = options.failedRate ?? 0.02;
  const maxLatency = options.maxLatency ?? 10;
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  const clock = Array.from({ length: options.clients }, () => Math.floor(rng() * 3));
  const planned: Planned[] = [];
  for (let i = 0; i < options.operations; i++) {
    const client = i % options.clients;
    const call = clock[client] + Math.floor(rng() * 3);
    const ret = call + 1 + Math.floor(rng() * maxLatency);
    clock[client] = ret + 1;
    const kind = chooseKind(rng);
    const r = rng();
    const outcome = r < unknownRate ? "unknown" : r < unknownRate + failedRate ? "failed" : "ok";
    const op: RegisterOperation = { client, kind, key: pick(rng, keys), call, outcome };
    if (outcome === "ok") op.return = ret;
    let point: number | undefined;
    if (outcome === "ok") point = call + rng() * (ret - call);
    else if (outcome === "unknown" && rng() < 0.5) point = call + rng() * 3 * (ret - call); // may land after the timeout
    planned.push({ op, point });
  }
  runModel(planned, rng, options.repeatedValues);
  return planned.map((p) => p.op);
}

function runModel(planned: Planned[], rng: Rng, repeatedValues: number | undefined): void {
  const state = new Map<string, Value>();
  const writtenSoFar = new Map<string, string[]>();
  let counter = 0;
  const fresh = (key: string): string => {
    const v = repeatedValues ? `${key}:r${Math.floor(rng() * repeatedValues)}` : `${key}:v${++counter}`;
    const list = writtenSoFar.get(key) ?? [];
    list.push(v);
    writtenSoFar.set(key, list);
    return v;
  };
  const staleGuess = (key: string): Value => {
    const list = writtenSoFar.get(key);
    return list && list.length > 0 && rng() < 0.7 ? pick(rng, list) : null;
  };
  const inOrder = planned
    .filter((p) => p.point !== undefined)
    .sort((a, b) => (a.point as number) - (b.point as number));
  for (const { op } of inOrder) {
    const current = state.get(op.key) ?? null;
    switch (op.kind) {
      case "put":
        op.value = fresh(op.key);
        state.set(op.key, op.value);
        break;
      case "delete":
        state.set(op.key, null);
        break;
      case "get":
        if (op.outcome === "ok") op.value = current;
        break;
      case "cas": {
        op.expected = rng() < 0.6 ? current : staleGuess(op.key);
        op.value = fresh(op.key);
        const swapped = op.expected === current;
        if (op.outcome === "ok") op.swapped = swapped;
        if (swapped) state.set(op.key, op.value);
        break;
      }
    }
  }
  // Ops that never took effect still need their inputs.
  for (const { op, point } of planned) {
    if (point !== undefined) continue;
    if (op.kind === "put") op.value = fresh(op.key);
    if (op.kind === "cas") {
      op.expected = staleGuess(op.key);
      op.value = fresh(op.key);
    }
  }
}

export interface Mutation {
  history: RegisterOperation[];
  description: string;
}

const isOkWrite = (op: RegisterOperation): boolean =>
  op.outcome === "ok" && (op.kind === "put" || op.kind === "delete" || (op.kind === "cas" && op.swapped === true));

/** A stale read: a get returns a put's value although another write finished in between. */
function staleRead(history: RegisterOperation[], rng: Rng): Mutation | undefined {
  const gets = history.filter((op) => op.kind === "get" && op.outcome === "ok");
  const candidates: Array<[RegisterOperation, RegisterOperation]> = [];
  for (const get of gets) {
    const writes = history.filter((w) => w.key === get.key && isOkWrite(w) && (w.return as number) < get.call);
    for (const old of writes) {
      if (old.kind !== "put" || old.value === get.value) continue;
      if (writes.some((w2) => w2 !== old && (old.return as number) < w2.call)) candidates.push([get, old]);
    }
  }
  if (candidates.length === 0) return undefined;
  const [get, old] = pick(rng, candidates);
  const mutated = history.map((op) => (op === get ? { ...op, value: old.value } : op));
  return {
    history: mutated,
    description: `stale read: get ${get.key} [${get.call}, ${get.return}] now returns ${old.value}`,
  };
}

/** A lost update: two swapped cas on one key both start from the same written value. */
function lostUpdate(history: RegisterOperation[], rng: Rng): Mutation | undefined {
  const swaps = history.filter((op) => op.kind === "cas" && op.outcome === "ok" && op.swapped && op.expected !== null);
  const pairs: Array<[RegisterOperation, RegisterOperation]> = [];
  for (const a of swaps)
    for (const b of swaps) if (a !== b && a.key === b.key && a.expected !== b.expected) pairs.push([a, b]);
  if (pairs.length === 0) return undefined;
  const [a, b] = pick(rng, pairs);
  const mutated = history.map((op) => (op === b ? { ...op, expected: a.expected } : op));
  return {
    history: mutated,
    description: `lost update: cas ${b.key} [${b.call}, ${b.return}] now also swaps from ${a.expected}`,
  };
}

/** A read from the future: a get returns the value of a put called after the get returned. */
function futureRead(history: RegisterOperation[], rng: Rng): Mutation | undefined {
  const pairs: Array<[RegisterOperation, RegisterOperation]> = [];
  for (const get of history) {
    if (get.kind !== "get" || get.outcome !== "ok") continue;
    for (const put of history) {
      if (put.kind === "put" && put.outcome !== "failed" && put.key === get.key && put.call > (get.return as number)) {
        pairs.push([get, put]);
        break;
      }
    }
  }
  if (pairs.length === 0) return undefined;
  const [get, put] = pick(rng, pairs);
  const mutated = history.map((op) => (op === get ? { ...op, value: writtenValue(put) } : op));
  return {
    history: mutated,
    description: `future read: get ${get.key} [${get.call}, ${get.return}] now returns ${put.value}`,
  };
}

/**
 * One seeded mutation that makes a history from generateLinearizableHistory non-linearizable
 * (provably, because written values are unique), or undefined if none applies.
 */
export function breakHistory(history: RegisterOperation[], seed: number): Mutation | undefined {
  const rng = mulberry32(seed ^ 0x5bd1e995);
  const kinds = [staleRead, lostUpdate, futureRead];
  const first = Math.floor(rng() * kinds.length);
  for (let i = 0; i < kinds.length; i++) {
    const mutation = kinds[(first + i) % kinds.length](history, rng);
    if (mutation) return mutation;
  }
  return undefined;
}
