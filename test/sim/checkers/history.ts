// The history format shared by the register checkers (see README.md in this folder).
// Pure: no I/O, no clock. Times are plain numbers chosen by whoever records the history.

/** A register's value; null means the key is absent (never written, or deleted). */
export type Value = string | null;

/**
 * What the client learnt about an operation:
 * - "ok": it took effect exactly once, between `call` and `return`; its result is recorded.
 * - "unknown": it may have taken effect at any point after `call`, or never (timeout, StaleCommand,
 *   a crash of the client or the server); its result, if any, is ignored.
 * - "failed": it definitely did not take effect (NotLeader, epoch error): the checkers ignore it,
 *   except the lost-write checker, which reports it if its value shows up anyway.
 */
export type Outcome = "ok" | "unknown" | "failed";

export type OperationKind = "put" | "get" | "delete" | "cas";

export interface RegisterOperation {
  /** Who issued it; only used to print the history. */
  client: number;
  kind: OperationKind;
  key: string;
  /** When the client sent it. */
  call: number;
  /** When the client got the answer; required for "ok", ignored otherwise. */
  return?: number;
  outcome: Outcome;
  /** put/cas: the value written. get: the value read (null = absent). */
  value?: Value;
  /** cas: the value the register must hold for the swap to happen. */
  expected?: Value;
  /** cas with outcome "ok": whether the swap happened. */
  swapped?: boolean;
}

/** A history that cannot be checked because it is malformed; names the offending operation. */
export class HistoryError extends Error {
  constructor(
    readonly index: number,
    readonly operation: unknown,
    reason: string,
  ) {
    super(`history operation #${index} ${safeJson(operation)}: ${reason}`);
    this.name = "HistoryError";
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    // A cyclic or otherwise unprintable object: the index in the message still locates it.
    return String(value);
  }
}

function isValue(v: unknown): v is Value {
  return v === null || typeof v === "string";
}

/** Checks the shape of every operation; throws HistoryError on the first malformed one. */
export function validateHistory(history: readonly RegisterOperation[]): void {
  history.forEach((op, index) => {
    const fail = (reason: string): never => {
      throw new HistoryError(index, op, reason);
    };
    if (typeof op !== "object" || op === null) fail("not an object");
    if (!["put", "get", "delete", "cas"].includes(op.kind)) fail(`unknown kind ${String(op.kind)}`);
    if (!["ok", "unknown", "failed"].includes(op.outcome)) fail(`unknown outcome ${String(op.outcome)}`);
    if (typeof op.key !== "string") fail("key must be a string");
    if (!Number.isFinite(op.call)) fail("call must be a finite number");
    if (op.outcome === "ok") {
      if (op.return === undefined || !Number.isFinite(op.return)) fail("an ok operation needs a finite return time");
      if ((op.return as number) < op.call) fail("returns before it is called");
    }
    if (op.kind === "put" && !(typeof op.value === "string")) fail("put needs a string value");
    if (op.kind === "get" && op.outcome === "ok" && !isValue(op.value))
      fail("an ok get needs the value read (null = absent)");
    if (op.kind === "cas") {
      if (!isValue(op.value) || !isValue(op.expected)) fail("cas needs value and expected (string or null)");
      if (op.outcome === "ok" && typeof op.swapped !== "boolean") fail("an ok cas needs swapped: boolean");
    }
  });
}

/** Whether the operation may change the register (so it can explain a later read). */
export function mayWrite(op: RegisterOperation): boolean {
  if (op.outcome === "failed") return false;
  if (op.kind === "put" || op.kind === "delete") return true;
  if (op.kind === "cas") return op.outcome === "unknown" || op.swapped === true;
  return false;
}

/** The value a writing operation leaves in the register. */
export function writtenValue(op: RegisterOperation): Value {
  return op.kind === "delete" ? null : (op.value ?? null);
}

/** The value an ok operation proves the register held, if any. */
export function observedValue(op: RegisterOperation): { value: Value } | undefined {
  if (op.outcome !== "ok") return undefined;
  if (op.kind === "get") return { value: op.value ?? null };
  if (op.kind === "cas" && op.swapped) return { value: op.expected ?? null };
  return undefined;
}

function show(v: Value | undefined): string {
  return v === null || v === undefined ? "nil" : JSON.stringify(v);
}

/** One line a person can read: `c3 put "k"="v1"  [10, 12]`. */
export function describeOperation(op: RegisterOperation): string {
  let what: string;
  switch (op.kind) {
    case "put":
      what = `put ${show(op.key)}=${show(op.value)}`;
      break;
    case "delete":
      what = `delete ${show(op.key)}`;
      break;
    case "get":
      what = `get ${show(op.key)}` + (op.outcome === "ok" ? ` -> ${show(op.value)}` : "");
      break;
    case "cas":
      what =
        `cas ${show(op.key)} ${show(op.expected)}->${show(op.value)}` +
        (op.outcome === "ok" ? (op.swapped ? " swapped" : " not swapped") : "");
      break;
  }
  const end = op.outcome === "ok" ? String(op.return) : op.outcome === "unknown" ? "?" : "x";
  const note = op.outcome === "ok" ? "" : `  (${op.outcome})`;
  return `c${op.client} ${what}  [${op.call}, ${end}]${note}`;
}

/** The operations in call order, one per line. */
export function describeHistory(ops: readonly RegisterOperation[]): string {
  return [...ops]
    .sort((a, b) => a.call - b.call)
    .map((op) => "  " + describeOperation(op))
    .join("\n");
}
