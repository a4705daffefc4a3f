// "No acknowledged write lost": after the faults stop and every in-flight operation has settled,
// a final read of every key must show a value that some write could have left last.
//
// An acknowledged write w is lost when the final value is not w's and no write of the final
// value could have come after w: every op that wrote it returned before w was called. (A write
// with an unknown outcome may have applied arbitrarily late, so it can always come after w.)
// The final value must also have been written at all (or be the key's initial value); a value
// written only by ops reported "failed" means a failure report lied.
import type { RegisterOperation, Value } from "./history.js";
import { describeOperation, mayWrite, validateHistory, writtenValue } from "./history.js";

export type LostWriteKind = "lost" | "phantom" | "missing-final-read";

export interface LostWriteViolation {
  kind: LostWriteKind;
  key: string;
  finalValue?: Value;
  /** The acknowledged write that was lost, or the failed op whose value showed up. */
  operation?: RegisterOperation;
  message: string;
}

export interface LostWriteResult {
  ok: boolean;
  violations: LostWriteViolation[];
  /** Acknowledged writes checked. */
  acknowledgedWrites: number;
  report: string;
}

function show(v: Value | undefined): string {
  return v === null || v === undefined ? "nil" : JSON.stringify(v);
}

/** The smallest failing piece besides the lost write and the final read: who wrote the final value, all before the write was sent. */
function finalWriters(writers: readonly RegisterOperation[], fromInitial: boolean): string {
  const shown = writers.slice(0, 3).map(describeOperation);
  if (writers.length > 3) shown.push(`${writers.length - 3} more`);
  if (fromInitial) shown.unshift("the initial value");
  return shown.length > 0 ? ` (the final value came from: ${shown.join("; ")})` : "";
}

/**
 * `history`: every write issued (reads are ignored); `finalRead`: the value of every key written,
 * read after the cluster settled (null = absent). Throws HistoryError if `history` is malformed.
 */
export function checkNoLostWrites(
  history: readonly RegisterOperation[],
  finalRead: ReadonlyMap<string, Value>,
  initial: ReadonlyMap<string, Value> = new Map(),
): LostWriteResult {
  validateHistory(history);
  const writesByKey = new Map<string, RegisterOperation[]>();
  for (const op of history) {
    if (op.kind === "get") continue;
    const list = writesByKey.get(op.key);
    if (list === undefined) writesByKey.set(op.key, [op]);
    else list.push(op);
  }
  const violations: LostWriteViolation[] = [];
  let acknowledgedWrites = 0;
  for (const [key, writes] of writesByKey) {
    const effective = writes.filter(mayWrite);
    const acknowledged = effective.filter((op) => op.outcome === "ok");
    acknowledgedWrites += acknowledged.length;
    if (!finalRead.has(key)) {
      if (effective.length > 0) {
        violations.push({
          kind: "missing-final-read",
          key,
          message: `key ${show(key)} was written but has no final read`,
        });
      }
      continue;
    }
    const final = finalRead.get(key) ?? null;
    const writersOfFinal = effective.filter((op) => writtenValue(op) === final);
    const fromInitial = final === (initial.get(key) ?? null);
    if (writersOfFinal.length === 0 && !fromInitial) {
      const liar = writes.find((op) => op.outcome === "failed" && writtenValue(op) === final);
      violations.push({
        kind: "phantom",
        key,
        finalValue: final,
        operation: liar,
        message: liar
          ? `key ${show(key)}: final value ${show(final)} was written by an op reported failed: ${describeOperation(liar)}`
          : `key ${show(key)}: final value ${show(final)} was never written`,
      });
      continue;
    }
    // The latest return among writers of the final value; the initial value counts as -infinity.
    const latestWriterReturn = (except: RegisterOperation): number => {
      let latest = -Infinity;
      for (const op of writersOfFinal) {
        if (op === except) continue;
        latest = Math.max(latest, op.outcome === "ok" ? (op.return as number) : Infinity);
      }
      return latest;
    };
    for (const w of acknowledged) {
      if (writtenValue(w) === final) continue;
      // Equal times count as concurrent, as in the linearizability checker.
      if (latestWriterReturn(w) >= w.call) continue;
      violations.push({
        kind: "lost",
        key,
        finalValue: final,
        operation: w,
        message:
          `acknowledged write lost: ${describeOperation(w)}; final read ${show(final)}, and no write of that value could follow it` +
          finalWriters(writersOfFinal, fromInitial),
      });
    }
  }
  const report = violations.length === 0 ? "no acknowledged write lost" : violations.map((v) => v.message).join("\n");
  return { ok: violations.length === 0, violations, acknowledgedWrites, report };
}
