import { describe, expect, it } from "vitest";
import { mulberry32 } from "../../../src/util/random.js";
import type { BankHistory, BankRead } from "./bank.js";
import { checkBank } from "./bank.js";

const accounts = ["a", "b", "c"];
const bank = (reads: BankRead[], final: BankRead, extra: Partial<BankHistory> = {}): BankHistory => ({
  accounts,
  total: 300,
  reads,
  final,
  ...extra,
});
const read = (a: number, b: number, c: number, at?: number): BankRead => ({ balances: { a, b, c }, at, client: 1 });

describe("bank invariant", () => {
  it("passes when every read sums to the total", () => {
    const result = checkBank(
      bank([read(100, 100, 100, 1), read(50, 150, 100, 2), read(0, 150, 150, 3)], read(10, 140, 150)),
    );
    expect(result).toMatchObject({ ok: true, readsChecked: 4 });
  });

  it("passes for seeded random transfers read between them", () => {
    const seed = 7;
    const rng = mulberry32(seed);
    const balances: Record<string, number> = { a: 100, b: 100, c: 100 };
    const reads: BankRead[] = [];
    for (let i = 0; i < 200; i++) {
      const from = accounts[Math.floor(rng() * 3)];
      const to = accounts[Math.floor(rng() * 3)];
      const amount = Math.floor(rng() * (balances[from] + 1));
      balances[from] -= amount;
      balances[to] += amount;
      reads.push({ balances: { ...balances }, at: i });
    }
    expect(checkBank(bank(reads, { balances: { ...balances } })).ok, `seed ${seed}`).toBe(true);
  });

  it("reports a read that saw half a transfer", () => {
    const result = checkBank(bank([read(100, 100, 100), read(50, 100, 100, 7)], read(50, 150, 100)));
    expect(result.ok).toBe(false);
    expect(result.violations).toEqual([expect.objectContaining({ kind: "wrong-total", read: 1 })]);
    expect(result.report).toBe("read #1 (c1 at 7): balances sum to 250, not 300 (off by -50): a=50 b=100 c=100");
  });

  it("reports a final read that lost or doubled money", () => {
    const result = checkBank(bank([], read(100, 100, 150)));
    expect(result.violations).toEqual([expect.objectContaining({ kind: "wrong-total", read: "final" })]);
  });

  it("reports missing, unknown, non-integer and negative balances", () => {
    const broken: BankRead[] = [
      { balances: { a: 100, b: 200 } },
      { balances: { a: 100, b: 100, c: 100, d: 0 } },
      { balances: { a: 100.5, b: 99.5, c: 100 } },
      { balances: { a: -10, b: 210, c: 100 } },
    ];
    const kinds = checkBank(bank(broken, read(100, 100, 100))).violations.map((v) => v.kind);
    expect(kinds).toEqual(["missing-account", "unknown-account", "not-an-amount", "not-an-amount", "negative"]);
    expect(checkBank(bank([broken[3]], read(100, 100, 100), { allowNegative: true })).ok).toBe(true);
  });

  it("rejects a bank it cannot check", () => {
    expect(() => checkBank(bank([], read(1, 1, 1), { total: 1.5 }))).toThrow(/not a safe integer/);
    expect(() => checkBank({ ...bank([], read(1, 1, 1)), accounts: ["a", "a"] })).toThrow(/repeat/);
  });
});
