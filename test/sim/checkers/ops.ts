// Test support: short constructors for hand-written histories. Omitting the return time means
// the outcome is unknown (the client timed out or crashed).
import type { RegisterOperation, Value } from "./history.js";

function outcomeOf(ret: number | undefined): Pick<RegisterOperation, "outcome" | "return"> {
  return ret === undefined ? { outcome: "unknown" } : { outcome: "ok", return: ret };
}

export const put = (client: number, key: string, value: string, call: number, ret?: number): RegisterOperation => ({
  client,
  kind: "put",
  key,
  value,
  call,
  ...outcomeOf(ret),
});

export const get = (client: number, key: string, value: Value, call: number, ret: number): RegisterOperation => ({
  client,
  kind: "get",
  key,
  value,
  call,
  return: ret,
  outcome: "ok",
});

export const del = (client: number, key: string, call: number, ret?: number): RegisterOperation => ({
  client,
  kind: "delete",
  key,
  call,
  ...outcomeOf(ret),
});

export const cas = (
  client: number,
  key: string,
  expected: Value,
  value: Value,
  swapped: boolean | undefined,
  call: number,
  ret?: number,
): RegisterOperation => ({
  client,
  kind: "cas",
  key,
  expected,
  value,
  call,
  ...(swapped === undefined ? {} : { swapped }),
  ...outcomeOf(ret),
});

export const failed = (op: RegisterOperation): RegisterOperation => ({ ...op, outcome: "failed", return: undefined });
