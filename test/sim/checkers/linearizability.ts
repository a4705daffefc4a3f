// Linearizability of per-key registers. Keys are independent objects, so the history is
// linearizable iff each key's sub-history is (P-compositionality): each key is searched on its
// own, which keeps every search small. See wgl.ts for the search and README.md for the format.
import type { RegisterOperation, Value } from "./history.js";
import { describeHistory, validateHistory } from "./history.js";
import { shrinkFailure } from "./shrink.js";
import { relevantOperations, searchRegister } from "./wgl.js";

export interface LinearizabilityOptions {
  /** Values the keys hold before the history starts; absent keys start absent (null). */
  initial?: ReadonlyMap<string, Value>;
  /** Search budget per key, in loop iterations; past it the key is "unknown". */
  maxStepsPerKey?: number;
  /** Search budget for the whole history; keys left when it is spent are "unknown". */
  maxTotalSteps?: number;
  /** Budget for shrinking each failing key to a small failing piece. */
  maxShrinkSteps?: number;
}

export interface KeyFailure {
  key: string;
  /** The smallest failing piece of this key's history found, in call order. */
  operations: RegisterOperation[];
  /** How many relevant operations the key had before shrinking. */
  originalCount: number;
  /** Whether no single op of the piece can be dropped (false: the shrink budget ran out). */
  minimal: boolean;
}

export type LinearizabilityResult =
  | { verdict: "ok"; keys: number; operations: number; steps: number }
  | { verdict: "illegal"; failures: KeyFailure[]; undecidedKeys: string[]; steps: number; report: string }
  | { verdict: "unknown"; undecidedKeys: string[]; steps: number; report: string };

export const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000;
export const DEFAULT_MAX_TOTAL_STEPS = 10_000_000;
export const DEFAULT_MAX_SHRINK_STEPS = 2_000_000;

function byKey(history: readonly RegisterOperation[]): Map<string, RegisterOperation[]> {
  const keys = new Map<string, RegisterOperation[]>();
  for (const op of history) {
    const list = keys.get(op.key);
    if (list === undefined) keys.set(op.key, [op]);
    else list.push(op);
  }
  return keys;
}

function describeFailure(f: KeyFailure): string {
  const size = f.minimal ? "a smallest failing piece" : "a failing piece (shrink budget ran out)";
  return (
    `key ${JSON.stringify(f.key)} is not linearizable; ${size}, ${f.operations.length} of ${f.originalCount} operations:\n` +
    describeHistory(f.operations)
  );
}

/**
 * Checks a history of put/get/delete/cas on registers. Throws HistoryError if it is malformed.
 * "illegal" is definite; "unknown" means some key exhausted its budget and none failed.
 */
export function checkLinearizable(
  history: readonly RegisterOperation[],
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  validateHistory(history);
  const maxSteps = options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY;
  const maxTotalSteps = options.maxTotalSteps ?? DEFAULT_MAX_TOTAL_STEPS;
  const maxShrinkSteps = options.maxShrinkSteps ?? DEFAULT_MAX_SHRINK_STEPS;
  const failures: KeyFailure[] = [];
  const undecidedKeys: string[] = [];
  let steps = 0;
  let shrinkSteps = 0;
  let operations = 0;
  const keys = byKey(relevantOperations(history));
  for (const [key, ops] of keys) {
    operations += ops.length;
    const initial = options.initial?.get(key) ?? null;
    const left = maxTotalSteps - steps;
    if (left <= 0) {
      undecidedKeys.push(key);
      continue;
    }
    const result = searchRegister(ops, initial, Math.min(maxSteps, left));
    steps += result.steps;
    if (result.verdict === "unknown") undecidedKeys.push(key);
    if (result.verdict !== "illegal") continue;
    const shrunk = shrinkFailure(ops, initial, maxSteps, maxShrinkSteps);
    shrinkSteps += shrunk.steps;
    const piece = [...shrunk.operations].sort((a, b) => a.call - b.call);
    failures.push({ key, operations: piece, originalCount: ops.length, minimal: shrunk.minimal });
  }
  const undecided = undecidedKeys.length
    ? `\nundecided within the budget (${maxSteps} steps per key, ${maxTotalSteps} in all): ${undecidedKeys.map((k) => JSON.stringify(k)).join(", ")}`
    : "";
  if (failures.length > 0) {
    const report = failures.map(describeFailure).join("\n") + undecided;
    return { verdict: "illegal", failures, undecidedKeys, steps: steps + shrinkSteps, report };
  }
  if (undecidedKeys.length > 0) {
    return { verdict: "unknown", undecidedKeys, steps, report: `linearizability unknown:${undecided}` };
  }
  return { verdict: "ok", keys: keys.size, operations, steps };
}
