// The Wing-Gong-Lowe search for one register (one key), with the optimizations porcupine made
// known: the history as a doubly linked list of call/return entries that ops are lifted out of
// and put back into, and a cache of (set of linearized ops, register state) so that no
// configuration is explored twice. The linearized set is a bitset with an incremental
// (Zobrist) hash, so a cache probe costs O(1) plus word-by-word compares within a bucket.
//
// Operations with an unknown outcome behave as if their return were at +infinity: the search may
// place them anywhere after their call, including after every acknowledged op, which is the same
// as "never took effect" since nothing observes the register after that. Their result is not
// checked. So the search succeeds as soon as every "ok" op is linearized.
import type { RegisterOperation, Value } from "./history.js";
import { mayWrite, observedValue, writtenValue } from "./history.js";

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

/**
 * Unknown writes are what makes the search explode (each may sit anywhere after its call), so
 * two sound reductions come first, for an unknown write w of value v:
 * - v is written by no other op and is not the initial value, and some ok op observed v: then w
 *   took effect, before the first such observer returned. It becomes an acknowledged op with that
 *   return time (a swapped cas, for a cas).
 * - nobody observes v (no ok read of v, no cas expecting v) and the key has no ok cas that failed
 *   to swap: then w having taken effect explains nothing a history without it could not, so it is
 *   dropped ("never took effect" is one of its allowed outcomes).
 */
export function tightenUnknownWrites(ops: readonly RegisterOperation[], initial: Value): RegisterOperation[] {
  const writers = new Map<Value, number>();
  const firstObserverReturn = new Map<Value, number>();
  const expectedByCas = new Set<Value>();
  let someCasFailedToSwap = false;
  for (const op of ops) {
    if (mayWrite(op)) writers.set(writtenValue(op), (writers.get(writtenValue(op)) ?? 0) + 1);
    const seen = observedValue(op);
    if (seen !== undefined) {
      const by = firstObserverReturn.get(seen.value);
      firstObserverReturn.set(seen.value, Math.min(by ?? Infinity, op.return as number));
    }
    if (op.kind === "cas") {
      expectedByCas.add(op.expected ?? null);
      if (op.outcome === "ok" && !op.swapped) someCasFailedToSwap = true;
    }
  }
  const tightened: RegisterOperation[] = [];
  for (const op of ops) {
    if (op.outcome !== "unknown" || op.kind === "get") {
      tightened.push(op);
      continue;
    }
    const v = writtenValue(op);
    const by = firstObserverReturn.get(v);
    if (by !== undefined) {
      // An observer that returned before w was sent makes the history illegal anyway; the
      // search finds that with w left as it is.
      const alone = writers.get(v) === 1 && v !== initial && by >= op.call;
      tightened.push(
        alone ? { ...op, outcome: "ok", return: by, ...(op.kind === "cas" ? { swapped: true } : {}) } : op,
      );
    } else if (expectedByCas.has(v) || someCasFailedToSwap) {
      tightened.push(op);
    }
  }
  return tightened;
}

function mix32(x: number): number {
  // A fixed integer hash (from the murmur3 finalizer): deterministic, no randomness needed.
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

// The register's state id for values no op ever compares against (no read returns them, no cas
// expects them): such values are indistinguishable to every op, so they share one state, and
// configurations that differ only in which of them the register holds meet in the cache.
const UNCOMPARED = 0;

function compile(ops: readonly RegisterOperation[], initial: Value): { compiled: CompiledOp[]; initialState: number } {
  const compared = new Set<Value>();
  for (const op of ops) {
    if (op.kind === "get") compared.add(op.value ?? null);
    if (op.kind === "cas") compared.add(op.expected ?? null);
  }
  const ids = new Map<Value, number>();
  const intern = (v: Value | undefined): number => {
    const key = v ?? null;
    if (!compared.has(key)) return UNCOMPARED;
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size + 1;
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
      default:
        throw new Error(`unknown operation kind ${JSON.stringify((op as { kind: unknown }).kind)}`);
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
  const { compiled, initialState } = compile(tightenUnknownWrites(ops, initial), initial);
  const n = compiled.length;
  let acknowledgedLeft = compiled.filter((op) => op.acknowledged).length;
  if (acknowledgedLeft === 0) return { verdict: "ok", steps: 0 };

  // Entries 2i (call of op i) and 2i+1 (its return) of the acknowledged ops in a doubly linked
  // list behind a head node. Unknown ops are kept apart (below): their return would sit at
  // +infinity, and walking past every pending one at each step made long histories quadratic.
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(NONE);
  const prev = new Int32Array(2 * n + 1).fill(NONE);
  let last = head;
  for (const e of sortedEntries(compiled).filter((e) => compiled[e >> 1].acknowledged)) {
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
  // The cache key hashes only the acknowledged ops: configurations that differ in which unknown
  // ops they placed meet in one bucket, where the one with fewer is kept (see `dominated`).
  const opHash = compiled.map((op, i) => (op.acknowledged ? mix32(i + 1) : 0));
  const acknowledgedMask = new Uint32Array(words);
  compiled.forEach((op, i) => {
    if (op.acknowledged) acknowledgedMask[i >>> 5] |= 1 << (i & 31);
  });
  const cache = new Map<number, CacheSlot[]>();
  // A configuration is dominated by a cached one with the same state, the same acknowledged ops
  // linearized and a subset of the unknown ones: unknown ops never have to be placed and never
  // block a return, so anything the larger one can still do, the smaller one can too. The
  // smaller one has been (or, as an ancestor, will be) explored, so the larger one is skipped.
  const dominated = (hash: number, state: number): boolean => {
    const slots = cache.get(hash);
    if (slots === undefined) return false;
    outer: for (const slot of slots) {
      if (slot.state !== state) continue;
      for (let w = 0; w < words; w++) {
        const cached = slot.bits[w];
        const current = linearized[w];
        if ((cached & ~current) !== 0 || (current & ~cached & acknowledgedMask[w]) !== 0) continue outer;
      }
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
  // Each configuration tries the acknowledged candidates first and the unknown ones only after:
  // placing an unknown op early only pays when nothing acknowledged can go next, and reaching a
  // configuration with few unknown ops first lets it dominate the ones with more (see above).
  //
  // An unknown op is a candidate once its call is no later than the first pending return. Those
  // with the same effect that are candidates now can go anywhere from here on, so they are
  // interchangeable: per effect class, only the latest called is tried.
  const classIds = new Map<string, number>();
  const classMembers: number[][] = [];
  const classOf = new Int32Array(n).fill(NONE);
  for (const op of [...compiled.keys()].sort((a, b) => compiled[a].call - compiled[b].call || a - b)) {
    const c = compiled[op];
    if (c.acknowledged) continue;
    const name = `${c.effect}/${c.write}/${c.expect}`;
    let id = classIds.get(name);
    if (id === undefined) {
      classIds.set(name, (id = classIds.size));
      classMembers.push([]);
    }
    classOf[op] = id;
    classMembers[id].push(op);
  }
  const classBlind = classMembers.map((members) => compiled[members[0]].effect === Effect.Write);
  const placed = new Uint8Array(n);
  const firstReturnTime = (): number => {
    for (let e = next[head]; e !== NONE; e = next[e]) if (e & 1) return compiled[e >> 1].return;
    return Infinity;
  };
  const candidateOfClass = (id: number, until: number): number => {
    const members = classMembers[id];
    let low = 0;
    let high = members.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compiled[members[middle]].call <= until) low = middle + 1;
      else high = middle;
    }
    for (let i = low - 1; i >= 0; i--) if (!placed[members[i]]) return members[i];
    return NONE;
  };

  // Where the walk of the current configuration is: `entry` in the list, or (after the list)
  // the next unknown class to try, with `until` the first pending return time.
  let entry = next[head];
  let nextClass = NONE;
  let until = Infinity;
  while (acknowledgedLeft > 0) {
    if (++steps > maxSteps) return { verdict: "unknown", steps: maxSteps };
    let op: number;
    if (nextClass === NONE) {
      if ((entry & 1) === 0) {
        op = entry >> 1;
        entry = next[entry];
      } else {
        nextClass = 0;
        until = firstReturnTime();
        continue;
      }
    } else if (nextClass < classMembers.length) {
      // A put or delete right after another unknown op would hide that op's effect before anyone
      // saw it, so the same configuration without that other op (tried first) covers it.
      const id = nextClass++;
      if (classBlind[id] && stackOps.length > 0 && !compiled[stackOps[stackOps.length - 1]].acknowledged) continue;
      op = candidateOfClass(id, until);
      if (op === NONE) continue;
    } else {
      // Every candidate of this configuration failed: undo the last choice.
      const undone = stackOps.pop();
      if (undone === undefined) return { verdict: "illegal", steps };
      state = stackStates.pop() as number;
      linearized[undone >>> 5] &= ~(1 << (undone & 31));
      setHash ^= opHash[undone];
      if (compiled[undone].acknowledged) {
        unlift(undone);
        acknowledgedLeft++;
        nextClass = NONE;
        entry = next[2 * undone];
      } else {
        placed[undone] = 0;
        nextClass = classOf[undone] + 1;
        until = firstReturnTime();
      }
      continue;
    }
    const after = step(compiled[op], state);
    if (after === NO_STATE) continue;
    linearized[op >>> 5] |= 1 << (op & 31);
    const hash = setHash ^ opHash[op];
    const key = (hash ^ mix32(after + 0x9e3779b9)) >>> 0;
    if (dominated(key, after)) {
      linearized[op >>> 5] &= ~(1 << (op & 31));
      continue;
    }
    remember(key, after);
    stackOps.push(op);
    stackStates.push(state);
    state = after;
    setHash = hash;
    if (compiled[op].acknowledged) {
      lift(op);
      acknowledgedLeft--;
    } else {
      placed[op] = 1;
    }
    nextClass = NONE;
    entry = next[head];
  }
  return { verdict: "ok", steps };
}
