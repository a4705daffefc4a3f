// Seeded randomized simulation of Raft clusters (3 and 5 nodes) under drops, delays, reorders,
// duplicates, partitions, crashes/restarts, compaction, conf changes, leader transfers and reads.
// Safety is checked after every event (sim/checker.ts); after healing, progress must resume.
//
//   default:            1000 schedules from seed 1
//   SEEDS=N SEED_START=S  N schedules from seed S (make raft-fuzz SEEDS=N)
//   SEED=n              replay one schedule exactly
import { describe, expect, it } from "vitest";
import { runSchedule } from "./sim/schedule.js";

const ONE_SEED = process.env.SEED;
const SEEDS = Number(process.env.SEEDS ?? 1000);
const SEED_START = Number(process.env.SEED_START ?? 1);
const CHUNK = 250;

function runRange(from: number, count: number): void {
  for (let seed = from; seed < from + count; seed++) {
    try {
      runSchedule(seed);
    } catch (e) {
      const err = e as Error;
      expect.fail(
        `simulation failed at seed ${seed} — replay: SEED=${seed} npx vitest run test/lab2a-raft/simulation.test.ts\n${err.stack ?? err.message}`,
      );
    }
  }
}

describe("randomized simulation", () => {
  if (ONE_SEED !== undefined) {
    it(`replays seed ${ONE_SEED}`, () => runRange(Number(ONE_SEED), 1), 600_000);
  } else {
    for (let from = SEED_START; from < SEED_START + SEEDS; from += CHUNK) {
      const count = Math.min(CHUNK, SEED_START + SEEDS - from);
      it(
        `schedules ${from}..${from + count - 1} keep safety and make progress after healing`,
        () => runRange(from, count),
        600_000,
      );
    }
  }
});
