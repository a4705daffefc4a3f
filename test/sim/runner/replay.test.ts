// `SEED=n make sim` must replay the seed a `make sim` run reported, in another process: nothing
// that differs between processes (a pid, a temp path, real time) may reach the trace. Checked on
// a seed whose run takes and installs snapshots, the path that writes files. The child settles
// between events by process.nextTick (make sim's way), this process by setImmediate: the hash
// must not tell them apart.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeResult, runSimulation } from "./simulation.js";

const MAIN = fileURLToPath(new URL("../../../dist/test/sim/runner/main.js", import.meta.url));
// A seed whose run takes snapshots with the default fault mix and settings (1 stopped doing so
// when 4 stores, reconfiguration and lease reads changed its interleaving; 42 before that).
const SEED = 4;
const FAULT_MS = 6_000;
/** Two runs of the seed (about 10 s of CPU together); more on a loaded machine. */
const TIMEOUT_MS = 180_000;

describe("replaying a seed", () => {
  it(
    "gives the same trace hash in another process, with snapshots generated, sent and installed",
    async () => {
      const here = await runSimulation({ seed: SEED, faultPhaseMs: FAULT_MS });
      expect(here.ok, describeResult(here)).toBe(true);
      expect(
        here.snapshots,
        `seed ${SEED} should take snapshots (log GC limits of test/sim/runner/config.ts)`,
      ).toBeGreaterThan(0);
      const { stdout } = await promisify(execFile)(process.execPath, [MAIN], {
        env: { ...process.env, SEED: String(SEED), FAULT_MS: String(FAULT_MS) },
        timeout: TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      });
      const replayed = /^trace hash: ([0-9a-f]+)$/m.exec(stdout)?.[1];
      expect(
        replayed,
        `SEED=${SEED} FAULT_MS=${FAULT_MS} in a child process diverged; here:\n${describeResult(here)}\nthere:\n${stdout}`,
      ).toBe(here.traceHash);
    },
    TIMEOUT_MS,
  );
});
