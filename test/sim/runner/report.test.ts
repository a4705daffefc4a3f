import { describe, expect, it } from "vitest";
import type { RegisterOperation } from "../checkers/index.js";
import { foldTimerLines, historySoFar } from "./report.js";
import type { BankWorkload } from "./workloads.js";

const emptyBank = { reads: [], accounts: ["a", "b"], total: 20 } as unknown as BankWorkload;

describe("the failure report", () => {
  it("folds runs of bare timer events and keeps every other line", () => {
    const tail = [
      "100 defer ",
      "100 timeout t7",
      "101 interval i3",
      "101 note c0 put k0=c0-1 ok",
      "102 timeout t9",
      "103 sim fault crash",
      "104 defer ",
      "107 defer ",
    ];
    expect(foldTimerLines(tail)).toEqual([
      "100-101 ms: 3 timer events",
      "101 note c0 put k0=c0-1 ok",
      "102 (1 timer event)",
      "103 sim fault crash",
      "104-107 ms: 2 timer events",
    ]);
  });

  it("checks the history of a run that stopped early: a stale read shows as its smallest piece", () => {
    const history: RegisterOperation[] = [
      { client: 0, kind: "put", key: "k", value: "a", call: 10, return: 20, outcome: "ok" },
      { client: 1, kind: "put", key: "k", value: "b", call: 30, return: 40, outcome: "ok" },
      { client: 2, kind: "get", key: "k", value: "a", call: 50, return: 60, outcome: "ok" },
      { client: 3, kind: "put", key: "other", value: "x", call: 55, outcome: "unknown" },
    ];
    const [report, ...rest] = historySoFar(history, emptyBank);
    expect(rest).toEqual([]);
    expect(report).toMatch(/^in the history until the stop: key "k" is not linearizable/);
    expect(report).toContain('get "k" -> "a"');
    expect(historySoFar(history.slice(0, 2), emptyBank)).toEqual([]);
  });

  it("checks the bank's reads of a run that stopped early", () => {
    const bank = {
      ...emptyBank,
      reads: [{ balances: { a: 10, b: 10 } }, { client: 1, balances: { a: 10, b: 5 } }, { balances: { a: 5, b: 15 } }],
    } as unknown as BankWorkload;
    expect(historySoFar([], bank)).toEqual([
      expect.stringMatching(/^in the bank's reads until the stop: read #1 \(c1\): balances sum to 15, not 20/),
    ]);
  });
});
