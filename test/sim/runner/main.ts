/**
 * `make sim`: runs SEEDS seeds (from SEED_BASE, default 1) and prints a summary; `SEED=n make sim`
 * replays one seed and prints its fault schedule, trace tail and hash. Exit code 1 if any failed.
 * FAULT_MS / LIVENESS_MS override the fault phase and the liveness bound (simulated ms), CLIENTS
 * the number of KvClients (half registers, half bank), STORES the stores (region 1 on three of
 * them), RECONFIG_MS the mean gap between the scheduler operators the run asks for (0: none);
 * FAULTS (comma-separated kinds) narrows the fault mix; DELIBERATE_BUGS turns safety switches off (test-only: src/util/deliberate-bugs.ts).
 * Every seed's line, and the summary, end with a trace hash.
 */
import { createHash } from "node:crypto";
import type { DeliberateBug } from "../../../src/util/deliberate-bugs.js";
import { DELIBERATE_BUGS } from "../../../src/util/deliberate-bugs.js";
import type { FaultKind } from "./faults.js";
import { FAULT_KINDS } from "./faults.js";
import type { SimOptions } from "./simulation.js";
import { describeResult, runSimulation } from "./simulation.js";

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** A comma-separated list of names from `allowed` (e.g. FAULTS=crash,isolate), or undefined when unset. */
function listEnv<T extends string>(name: string, allowed: readonly T[]): T[] | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const names = raw.split(",").map((n) => n.trim());
  for (const n of names)
    if (!(allowed as readonly string[]).includes(n))
      throw new Error(`${name}: unknown name ${JSON.stringify(n)} (known: ${allowed.join(", ")})`);
  return names as T[];
}

/** The settings a replay needs besides the seed (the fault kinds, bugs and phase lengths this run used). */
function replayEnv(): string {
  return ["FAULTS", "DELIBERATE_BUGS", "FAULT_MS", "LIVENESS_MS", "CLIENTS", "STORES", "RECONFIG_MS", "REPLICA_READS"]
    .filter((name) => process.env[name])
    .map((name) => ` ${name}=${process.env[name]}`)
    .join("");
}

async function main(): Promise<number> {
  const base: Omit<SimOptions, "seed"> = {
    faultPhaseMs: intEnv("FAULT_MS", 20_000),
    livenessBoundMs: intEnv("LIVENESS_MS", 15_000),
    traceTail: intEnv("TRACE_TAIL", 200),
    clients: intEnv("CLIENTS", 4),
    stores: intEnv("STORES", 4),
    reconfigureEveryMs: intEnv("RECONFIG_MS", 700),
    replicaReads: process.env.REPLICA_READS === "1",
    faultKinds: listEnv<FaultKind>("FAULTS", FAULT_KINDS),
    deliberateBugs: new Set(listEnv<DeliberateBug>("DELIBERATE_BUGS", DELIBERATE_BUGS) ?? []),
    // This process runs nothing but the simulation: no turn of the event loop between events.
    settleBy: "tick",
  };
  if (process.env.SEED !== undefined && process.env.SEED !== "") {
    const r = await runSimulation({ ...base, seed: intEnv("SEED", 0) });
    console.log(describeResult(r));
    return r.ok ? 0 : 1;
  }
  const seeds = intEnv("SEEDS", 500);
  const first = intEnv("SEED_BASE", 1);
  const wallStart = performance.now();
  let simulatedMs = 0;
  let faults = 0;
  let operations = 0;
  let acknowledged = 0;
  let unknown = 0;
  let snapshots = 0;
  let confChanges = 0;
  let transfers = 0;
  let bankReads = 0;
  let schedulerCrashes = 0;
  const failed: number[] = [];
  // The run's own trace hash: over every seed's, in order (one seed's differs: so does this).
  const runHash = createHash("sha256");
  for (let seed = first; seed < first + seeds; seed++) {
    const r = await runSimulation({ ...base, seed });
    simulatedMs += r.simulatedMs;
    faults += r.faults.length;
    operations += r.operations;
    acknowledged += r.acknowledgedWrites;
    unknown += r.unknownWrites;
    snapshots += r.snapshots;
    confChanges += r.confChanges;
    transfers += r.bank.committed;
    bankReads += r.bank.reads;
    schedulerCrashes += r.schedulerCrashes.length;
    runHash.update(`${seed} ${r.traceHash}\n`);
    if (!r.ok) {
      failed.push(seed);
      console.log(`replay: SEED=${seed}${replayEnv()} make sim`);
      console.log(describeResult(r));
    } else
      console.log(
        `seed ${seed} ok ${(r.simulatedMs / 1000).toFixed(1)} sim s ${r.wallMs.toFixed(0)} ms ${r.regions} regions ${r.confChanges} conf changes ${r.operatorSteps} operator steps trace hash: ${r.traceHash}`,
      );
  }
  const wallS = (performance.now() - wallStart) / 1000;
  console.log(
    [
      `seeds: ${seeds} (${first}..${first + seeds - 1}), failed: ${failed.length}${failed.length ? ` [${failed.join(", ")}]` : ""}`,
      `simulated time: ${(simulatedMs / 1000).toFixed(1)} s, faults: ${faults} (+${schedulerCrashes} scheduler crashes), ops checked: ${operations} (${acknowledged} acknowledged writes, ${unknown} writes of unknown outcome, ${transfers} bank transfers, ${bankReads} bank snapshot reads), snapshots: ${snapshots}, conf changes: ${confChanges}`,
      `wall time: ${wallS.toFixed(1)} s, speed: ${(simulatedMs / 1000 / wallS).toFixed(1)} simulated s per wall s, ${((seeds / wallS) * 60).toFixed(1)} seeds per minute`,
      `trace hash: ${runHash.digest("hex")}`,
    ].join("\n"),
  );
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
