// The Wing-Gong-Lowe search for one register (one key), with the optimizations porcupine made
// known: the history as a doubly linked list of call/return entries that ops are lifted out of
// and put back into, and a cache of (set of linearized ops, register state) so that no
// configuration is explored twice. The linearized set is a bitset with an incremental
// (Zobrist) hash, so a cache probe costs O(1) plus one word-by-word compare on a hit.
//
// Operations with an unknown outcome get their return entry at +infinity: the search may place
// them anywhere after their call, including after every acknowledged op, which is the same as
// "never took effect" since nothing observes the register after that. Their result is not
// checked. So the search succeeds as soon as every "ok" op is linearized.
import type { RegisterOperation, Value } from "./history.js";

export type SearchVerdict = "ok" | "illegal" | "unknown";

export interface SearchResult {
  verdict: SearchVerdict;
  /** Loop iterations used; "unknown" means the budget ran out. */
  steps: number;
}

const NO_STATE = -1;
const NONE = -1;

// How each op acts on the register, with values interned to small integers.
const Effect = {
  /** put/delete: state := write. */
  Write: 0,
  /** ok get: requires state == expect. */
  Read: 1,
  /** ok cas that swapped: requires state == expect, then state := write. */
  CasSwapped: 2,
  /** ok cas that did not swap: requires state != expect. */
  CasNotSwapped: 3,
  /** unknown cas: if state == expect then state := write; never fails. */
  CasUnknown: 4,
} as const;
type Effect = (typeof Effect)[keyof typeof Effect];

interface CompiledOp {
  effect: Effect;
  write: number;
  expect: number;
  acknowledged: boolean;
  call: number;
  return: number;
}

/** Operations that constrain the search: failed ops and unknown reads say nothing. */
export function relevantOperations(ops: readonly RegisterOperation[]): RegisterOperation[] {
  return ops.filter((op) => op.outcome !== "failed" && !(op.outcome === "unknown" && op.kind === "get"));
}

function mix32(x: number): number {
  // A fixed integer hash (from the murmur3 finalizer): deterministic, no randomness needed.
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function compile(ops: readonly RegisterOperation[], initial: Value): { compiled: CompiledOp[]; initialState: number } {
  const ids = new Map<Value, number>();
  const intern = (v: Value | undefined): number => {
    const key = v ?? null;
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    return id;
  };
  const initialState = intern(initial);
  const compiled = ops.map((op): CompiledOp => {
    const acknowledged = op.outcome === "ok";
    const base = { acknowledged, call: op.call, return: acknowledged ? (op.return as number) : Infinity };
    switch (op.kind) {
      case "put":
        return { ...base, effect: Effect.Write, write: intern(op.value), expect: NO_STATE };
      case "delete":
        return { ...base, effect: Effect.Write, write: intern(null), expect: NO_STATE };
      case "get":
        return { ...base, effect: Effect.Read, write: NO_STATE, expect: intern(op.value) };
      case "cas": {
        const effect = !acknowledged ? Effect.CasUnknown : op.swapped ? Effect.CasSwapped : Effect.CasNotSwapped;
        return { ...base, effect, write: intern(op.value), expect: intern(op.expected) };
      }
    }
  });
  return { compiled, initialState };
}

/** The register state after `op`, or NO_STATE if `op` cannot take effect in `state`. */
function step(op: CompiledOp, state: number): number {
  switch (op.effect) {
    case Effect.Write:
      return op.write;
    case Effect.Read:
      return state === op.expect ? state : NO_STATE;
    case Effect.CasSwapped:
      return state === op.expect ? op.write : NO_STATE;
    case Effect.CasNotSwapped:
      return state !== op.expect ? state : NO_STATE;
    case Effect.CasUnknown:
      return state === op.expect ? op.write : state;
  }
}

/**
 * Entry order: by time; at equal times calls come first, so two ops that touch the same instant
 * count as concurrent (the permissive reading: give distinct times for a strict order).
 */
function sortedEntries(compiled: readonly CompiledOp[]): number[] {
  const entries: number[] = [];
  for (let i = 0; i < compiled.length; i++) entries.push(2 * i, 2 * i + 1);
  const time = (e: number): number => (e & 1 ? compiled[e >> 1].return : compiled[e >> 1].call);
  entries.sort((a, b) => time(a) - time(b) || (a & 1) - (b & 1) || a - b);
  return entries;
}

interface CacheSlot {
  bits: Uint32Array;
  state: number;
}

/** Decides whether the ops of one key have a linearization, within `maxSteps` iterations. */
export function searchRegister(ops: readonly RegisterOperation[], initial: Value, maxSteps: number): SearchResult {
  const { compiled, initialState } = compile(ops, initial);
  const n = compiled.length;
  let acknowledgedLeft = compiled.filter((op) => op.acknowledged).length;
  if (acknowledgedLeft === 0) return { verdict: "ok", steps: 0 };

  // Entries 2i (call of op i) and 2i+1 (its return) in a doubly linked list behind a head node.
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(NONE);
  const prev = new Int32Array(2 * n + 1).fill(NONE);
  let last = head;
  for (const e of sortedEntries(compiled)) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  const lift = (op: number): void => {
    const c = 2 * op;
    const r = c + 1;
    next[prev[c]] = next[c];
    prev[next[c]] = prev[c];
    next[prev[r]] = next[r];
    if (next[r] !== NONE) prev[next[r]] = prev[r];
  };
  const unlift = (op: number): void => {
    const c = 2 * op;
    const r = c + 1;
    next[prev[r]] = r;
    if (next[r] !== NONE) prev[next[r]] = r;
    next[prev[c]] = c;
    prev[next[c]] = c;
  };

  const words = (n + 31) >>> 5;
  const linearized = new Uint32Array(words);
  const opHash = compiled.map((_, i) => mix32(i + 1));
  const cache = new Map<number, CacheSlot[]>();
  const seen = (hash: number, state: number): boolean => {
    const slots = cache.get(hash);
    if (slots === undefined) return false;
    outer: for (const slot of slots) {
      if (slot.state !== state) continue;
      for (let w = 0; w < words; w++) if (slot.bits[w] !== linearized[w]) continue outer;
      return true;
    }
    return false;
  };
  const remember = (hash: number, state: number): void => {
    const slot = { bits: linearized.slice(), state };
    const slots = cache.get(hash);
    if (slots === undefined) cache.set(hash, [slot]);
    else slots.push(slot);
  };

  // The search stack: which op was linearized, and the state before it.
  const stackOps: number[] = [];
  const stackStates: number[] = [];
  let state = initialState;
  let setHash = 0;
  let steps = 0;
  let entry = next[head];
  while (acknowledgedLeft > 0) {
    if (++steps > maxSteps) return { verdict: "unknown", steps: maxSteps };
    if ((entry & 1) === 0) {
      const op = entry >> 1;
      const after = step(compiled[op], state);
      if (after !== NO_STATE) {
        linearized[op >>> 5] |= 1 << (op & 31);
        const hash = setHash ^ opHash[op];
        const key = (hash ^ mix32(after + 0x9e3779b9)) >>> 0;
        if (!seen(key, after)) {
          remember(key, after);
          stackOps.push(op);
          stackStates.push(state);
          state = after;
          setHash = hash;
          lift(op);
          if (compiled[op].acknowledged) acknowledgedLeft--;
          entry = next[head];
          continue;
        }
        linearized[op >>> 5] &= ~(1 << (op & 31));
      }
      entry = next[entry];
    } else {
      // A return reached before its call was linearized: undo the last choice.
      const op = stackOps.pop();
      if (op === undefined) return { verdict: "illegal", steps };
      state = stackStates.pop() as number;
      linearized[op >>> 5] &= ~(1 << (op & 31));
      setHash ^= opHash[op];
      unlift(op);
      if (compiled[op].acknowledged) acknowledgedLeft++;
      entry = next[2 * op];
    }
  }
  return { verdict: "ok", steps };
}
