/**
 * What a seed prints: its summary, the fault and reconfiguration schedule, the failures (each
 * checker's smallest failing piece of history), and the trace's last events with the timer
 * noise folded so the lines that tell a story (client ops, faults, notes) stand out.
 */
import type { RegisterOperation } from "../checkers/index.js";
import { checkBank, checkLinearizable } from "../checkers/index.js";
import { describeFault } from "./faults.js";
import { describeReconfiguration } from "./reconfigure.js";
import type { SimResult } from "./simulation.js";
import type { BankWorkload } from "./workloads.js";

/** Bare timer, interval and deferral events: "<ms> defer ", "<ms> timeout t12", "<ms> interval i3". */
const TIMER_LINE = /^(\d+) (?:defer|timeout t\d+|interval i\d+) ?$/;

/** The trace with each run of bare timer events folded into one line that counts them. */
export function foldTimerLines(lines: readonly string[]): string[] {
  const out: string[] = [];
  let run: { count: number; from: string; to: string } | undefined;
  const flush = (): void => {
    if (!run) return;
    const span = run.from === run.to ? `${run.from} ms` : `${run.from}-${run.to} ms`;
    out.push(run.count === 1 ? `${run.from} (1 timer event)` : `${span}: ${run.count} timer events`);
    run = undefined;
  };
  for (const line of lines) {
    const timer = TIMER_LINE.exec(line);
    if (!timer) {
      flush();
      out.push(line);
    } else if (run) {
      run.count++;
      run.to = timer[1]!;
    } else run = { count: 1, from: timer[1]!, to: timer[1]! };
  }
  flush();
  return out;
}

/**
 * The checks a run that stopped early (at a failure, or hung) did not reach, over what the
 * clients saw until then: a non-linearizable piece of the registers' history or a snapshot read
 * of the bank with the wrong total, when there is one.
 */
export function historySoFar(history: readonly RegisterOperation[], bank: BankWorkload): string[] {
  const out: string[] = [];
  const lin = checkLinearizable(history);
  if (lin.verdict === "illegal") out.push(`in the history until the stop: ${lin.report}`);
  const last = bank.reads[bank.reads.length - 1];
  if (last) {
    const b = checkBank({ accounts: bank.accounts, total: bank.total, reads: bank.reads.slice(0, -1), final: last });
    if (!b.ok) out.push(`in the bank's reads until the stop: ${b.report}`);
  }
  return out;
}

/** The failure report: seed, fault schedule, failures, the trace's last lines. */
export function describeResult(r: SimResult): string {
  const lines = [
    `seed ${r.seed}: ${r.ok ? "ok" : "FAILED"} (${(r.simulatedMs / 1000).toFixed(1)} simulated s, ${r.events} events, ${r.operations} ops (${r.acknowledgedWrites} acknowledged writes, ${r.unknownWrites} unknown; bank ${r.bank.committed} transfers committed, ${r.bank.conflicts} conflicts, ${r.bank.undetermined} undetermined, ${r.bank.failed} failed, ${r.bank.reads} snapshot reads), ${r.regions} regions, ${r.operatorSteps} operator steps, ${r.confChanges} conf changes, ${r.snapshots} snapshots, ${r.raftApplies} entries applied alike${r.uncheckedApplies ? ` (${r.uncheckedApplies} applies unchecked)` : ""}, ${r.wallMs.toFixed(0)} ms wall)`,
    `fault schedule:`,
    ...r.faults.map((f) => `  ${describeFault(f)}`),
    ...r.schedulerCrashes.map((c) => `  ${c.at.toFixed(0)}ms +${c.durationMs.toFixed(0)}ms scheduler-crash`),
    `reconfiguration requests: ${r.reconfigurations.map(describeReconfiguration).join(", ") || "none"}`,
  ];
  if (!r.ok) lines.push("failures:", ...r.failures.map((f) => `  ${f}`));
  lines.push(
    `trace tail (last ${r.traceTail.length} events, bare timer events folded):`,
    ...foldTimerLines(r.traceTail).map((l) => `  ${l}`),
    `trace hash: ${r.traceHash}`,
  );
  return lines.join("\n");
}
