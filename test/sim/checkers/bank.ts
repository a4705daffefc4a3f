// The bank invariant: transactions move money between accounts and never create or destroy it,
// so every snapshot read of all accounts, and the final read, must sum to the same total. A read
// that sees half of a transfer (a torn snapshot, a lost or doubled commit) breaks the sum.
// Amounts are numbers and must be safe integers, so sums are exact.

export interface BankRead {
  /** Who read it and when; only printed. */
  client?: number;
  at?: number;
  /** The balance of every account, read in one snapshot (one transaction). */
  balances: Readonly<Record<string, number>>;
}

export interface BankHistory {
  accounts: readonly string[];
  total: number;
  /** Snapshot reads taken while transfers ran. */
  reads: readonly BankRead[];
  /** The read after the cluster settled. */
  final: BankRead;
  /** Whether the workload may overdraw an account (default: no, a negative balance is a bug). */
  allowNegative?: boolean;
}

export type BankViolationKind = "wrong-total" | "missing-account" | "unknown-account" | "not-an-amount" | "negative";

export interface BankViolation {
  kind: BankViolationKind;
  /** Index into `reads`, or "final". */
  read: number | "final";
  message: string;
}

export interface BankResult {
  ok: boolean;
  violations: BankViolation[];
  readsChecked: number;
  report: string;
}

function describeRead(read: BankRead, which: number | "final"): string {
  const who = [read.client !== undefined ? `c${read.client}` : "", read.at !== undefined ? `at ${read.at}` : ""]
    .filter(Boolean)
    .join(" ");
  const name = which === "final" ? "final read" : `read #${which}`;
  return who ? `${name} (${who})` : name;
}

function checkRead(history: BankHistory, read: BankRead, which: number | "final"): BankViolation[] {
  const violations: BankViolation[] = [];
  const name = describeRead(read, which);
  const add = (kind: BankViolationKind, detail: string): void => {
    violations.push({ kind, read: which, message: `${name}: ${detail}` });
  };
  const balances = read.balances;
  const expected = new Set(history.accounts);
  for (const account of Object.keys(balances)) {
    if (!expected.has(account)) add("unknown-account", `account ${JSON.stringify(account)} is not in the bank`);
  }
  let sum = 0;
  let summable = true;
  for (const account of history.accounts) {
    if (!Object.hasOwn(balances, account)) {
      add("missing-account", `account ${JSON.stringify(account)} missing`);
      summable = false;
      continue;
    }
    const amount = balances[account];
    if (!Number.isSafeInteger(amount)) {
      add("not-an-amount", `account ${JSON.stringify(account)} holds ${String(amount)}, not a safe integer`);
      summable = false;
      continue;
    }
    if (amount < 0 && !history.allowNegative) add("negative", `account ${JSON.stringify(account)} holds ${amount}`);
    sum += amount;
  }
  if (summable && sum !== history.total) {
    const listing = history.accounts.map((a) => `${a}=${balances[a]}`).join(" ");
    add("wrong-total", `balances sum to ${sum}, not ${history.total} (off by ${sum - history.total}): ${listing}`);
  }
  return violations;
}

/** Checks every snapshot read and the final read against the bank's total. */
export function checkBank(history: BankHistory): BankResult {
  if (!Number.isSafeInteger(history.total)) throw new RangeError(`bank total ${history.total} is not a safe integer`);
  if (new Set(history.accounts).size !== history.accounts.length) throw new RangeError("bank accounts repeat a name");
  const violations: BankViolation[] = [];
  for (const [i, read] of history.reads.entries()) violations.push(...checkRead(history, read, i));
  violations.push(...checkRead(history, history.final, "final"));
  const report =
    violations.length === 0
      ? `bank total ${history.total} held in ${history.reads.length} reads and the final read`
      : violations.map((v) => v.message).join("\n");
  return { ok: violations.length === 0, violations, readsChecked: history.reads.length + 1, report };
}
