/**
 * The raftstore settings of the simulation: the test cluster's short ticks, with limits so small
 * that the rare paths run all the time. A leader compacts its log every few dozen entries, so a
 * follower that was down, partitioned or slow for a second comes back to a log that no longer
 * has what it needs and takes a snapshot (generated, streamed, received and installed through
 * the simulated disk's files); regions split as soon as they hold a handful of registers; the
 * entry cache is small enough that catching up reads the raft engine.
 */
import type { RaftstoreConfig } from "../../../src/kv/raftstore/index.js";
import { TEST_RAFTSTORE_CONFIG } from "../../../src/kv/raftstore/index.js";

export const SIM_RAFTSTORE_CONFIG: RaftstoreConfig = {
  ...TEST_RAFTSTORE_CONFIG,
  // Production-like ticks: simulated time is free, and fewer ticks per simulated second are fewer events.
  raftBaseTickMs: 100,
  schedulerHeartbeatTickMs: 500,
  schedulerStoreHeartbeatTickMs: 1_000,
  raftLogGcTickMs: 100,
  raftLogGcCountLimit: 24,
  raftLogGcSizeLimit: 8 * 1024,
  raftEntryCacheSize: 2 * 1024,
  // Registers and bank accounts are a few bytes each, but every transaction adds MVCC versions:
  // the regions keep growing, so the scheduler's AskSplit and the splits run all through a seed.
  regionSplitSize: 2 * 1024,
  regionMaxSize: 3 * 1024,
  splitRegionCheckTickMs: 500,
};
