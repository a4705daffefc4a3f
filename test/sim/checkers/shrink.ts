// Shrinks a non-linearizable history of one key to a small piece that still fails, so a person
// can see the bug in a few lines instead of hundreds (delta debugging: drop chunks, then single
// ops, while the rest still fails).
//
// Dropping an operation can itself make a history fail: drop the only put of "a" and a read of
// "a" becomes impossible, a failure the original did not have. So a drop is kept only if every
// value still observed by the piece (a read, or the expected value of a swapped cas) is still
// written by some op of the piece, or is the key's initial value and no op of the original writes
// it. Every op of the piece is a real op of the history, unchanged.
import type { RegisterOperation, Value } from "./history.js";
import { mayWrite, observedValue, writtenValue } from "./history.js";
import { searchRegister } from "./wgl.js";

export interface ShrinkResult {
  operations: RegisterOperation[];
  /** False when the budget ran out before no single op could be dropped any more. */
  minimal: boolean;
  steps: number;
}

function explainsObservations(ops: readonly RegisterOperation[], initialUnwritten: boolean, initial: Value): boolean {
  const written = new Set<Value>();
  for (const op of ops) if (mayWrite(op)) written.add(writtenValue(op));
  for (const op of ops) {
    const seen = observedValue(op);
    if (seen === undefined || written.has(seen.value)) continue;
    if (initialUnwritten && seen.value === initial) continue;
    return false;
  }
  return true;
}

/** `ops` must be a non-linearizable history of one key (as decided by searchRegister). */
export function shrinkFailure(
  ops: readonly RegisterOperation[],
  initial: Value,
  maxStepsPerCheck: number,
  maxTotalSteps: number,
): ShrinkResult {
  const initialUnwritten = !ops.some((op) => mayWrite(op) && writtenValue(op) === initial);
  let steps = 0;
  let outOfBudget = false;
  const stillFails = (candidate: RegisterOperation[]): boolean => {
    if (!explainsObservations(candidate, initialUnwritten, initial)) return false;
    if (steps >= maxTotalSteps) {
      outOfBudget = true;
      return false;
    }
    const result = searchRegister(candidate, initial, Math.min(maxStepsPerCheck, maxTotalSteps - steps));
    steps += result.steps;
    return result.verdict === "illegal";
  };

  // First the shortest failing prefix in call order that a binary search finds: cheap, since most
  // prefix checks pass quickly, and it leaves the expensive drops below a shorter history. (Failing
  // is not monotone in the prefix length, so this is a good prefix, not always the shortest.)
  let current = [...ops].sort((a, b) => a.call - b.call);
  // Unknown writes make every check of a failing candidate expensive, and a failure rarely needs
  // them: try without all of them, then without those whose value no op observes.
  const observed = new Set(current.map(observedValue).flatMap((seen) => (seen ? [seen.value] : [])));
  const withoutUnknown = current.filter((op) => op.outcome !== "unknown");
  const withoutUnobserved = current.filter((op) => op.outcome !== "unknown" || observed.has(writtenValue(op)));
  if (withoutUnknown.length < current.length && stillFails(withoutUnknown)) current = withoutUnknown;
  else if (withoutUnobserved.length < current.length && stillFails(withoutUnobserved)) current = withoutUnobserved;
  let low = 1;
  let high = current.length;
  while (low < high && !outOfBudget) {
    const middle = Math.floor((low + high) / 2);
    if (stillFails(current.slice(0, middle))) high = middle;
    else low = middle + 1;
  }
  current = current.slice(0, high);
  let chunk = Math.max(1, Math.floor(current.length / 2));
  for (;;) {
    let dropped = false;
    for (let start = 0; start < current.length && !outOfBudget; ) {
      const candidate = current.slice(0, start).concat(current.slice(start + chunk));
      if (candidate.length > 0 && stillFails(candidate)) {
        current = candidate;
        dropped = true;
      } else {
        start += chunk;
      }
    }
    if (outOfBudget) return { operations: current, minimal: false, steps };
    if (chunk > 1) chunk = Math.max(1, Math.floor(chunk / 2));
    else if (!dropped) return { operations: current, minimal: true, steps };
  }
}
