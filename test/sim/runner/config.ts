/**
 * The raftstore settings of the simulation: the test cluster's short ticks, with limits so small
 * that the rare paths run all the time. A leader compacts its log every few dozen entries, so a
 * follower that was down, partitioned or slow for a second comes back to a log that no longer
 * has what it needs and takes a snapshot (generated, streamed, received and installed through
 * the simulated disk's files); regions split as soon as they hold a handful of registers; the
 * entry cache is small enough that catching up reads the raft engine.
 */
import { TEST_RAFTSTORE_CONFIG, type RaftstoreConfig } from "../../../src/kv/raftstore/index.js";

export const SIM_RAFTSTORE_CONFIG: RaftstoreConfig = {
  ...TEST_RAFTSTORE_CONFIG,
  raftLogGcTickMs: 100,
  raftLogGcCountLimit: 24,
  raftLogGcSizeLimit: 8 * 1024,
  raftEntryCacheSize: 2 * 1024,
  // A raw register (key and value) is 7-10 bytes in CF default: a region of two or more splits
  // until each holds one.
  regionMaxSize: 12,
  regionSplitSize: 8,
  splitRegionCheckTickMs: 200,
};
