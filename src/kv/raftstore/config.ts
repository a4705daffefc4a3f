import type { DeliberateBugs } from "../../util/deliberate-bugs.js";

/** Raftstore settings. Defaults suit a real deployment; tests shrink the intervals. */
import { TinyKvError } from "../../util/errors.js";
export interface RaftstoreConfig {
  /** One raft tick. */
  raftBaseTickMs: number;
  raftHeartbeatTicks: number;
  raftElectionTicks: number;
  /** How often a leader checks whether to compact its log. */
  raftLogGcTickMs: number;
  /** Compact once this many applied entries sit in the log. */
  raftLogGcCountLimit: number;
  /** ...or once the live log holds this many bytes of entries (TiKV's raft-log-gc-size-limit). */
  raftLogGcSizeLimit: number;
  /** A write whose raft command encodes to more bytes is refused before proposing (TiKV's raft-entry-max-size). */
  raftEntryMaxSize: number;
  /**
   * Bytes of applied log entries each peer keeps in memory for followers that are a little
   * behind; older entries are read back from the raft engine when a follower needs them.
   */
  raftEntryCacheSize: number;
  /** Bytes of entries in one append message. */
  raftMaxSizePerMsg: number;
  raftMaxInflightMsgs: number;
  splitRegionCheckTickMs: number;
  /** A region over this size (bytes of keys+values) is split... */
  regionMaxSize: number;
  /** ...at the key where the left part reaches this size. */
  regionSplitSize: number;
  /** Snapshot streams this store receives at once; more are refused (TiKV's concurrent-recv-snap-limit). */
  concurrentRecvSnapLimit: number;
  /** A snapshot stream declaring more bytes is refused before any is written. */
  snapRecvMaxBytes: number;
  /** A snapshot stream that sends no chunk for this long is aborted and its partial file deleted. */
  snapRecvIdleMs: number;
  schedulerHeartbeatTickMs: number;
  schedulerStoreHeartbeatTickMs: number;
  /**
   * A read that has not been served by then fails (the client retries). Writes have no server-side
   * deadline: once in the log, only their apply or a StaleCommand answers them.
   */
  requestTimeoutMs: number;
  /**
   * A leader that a quorum heard from recently serves linearizable reads locally, without a
   * heartbeat round (lease.ts); off, every read takes a ReadIndex round.
   */
  leaseReads: boolean;
  /**
   * The lease is this percentage shorter than the shortest time in which the others can elect a
   * new leader: room for the followers' tick timers running faster than this store's clock.
   */
  leaseClockDriftPercent: number;
  /**
   * How often each region's leader proposes its resolved ts (safe-ts.ts): a replica serves a
   * stale read at ts once its safe ts reaches ts, so this bounds how stale a read must be to be
   * served by any replica. Each round is one small raft entry per led region.
   */
  resolvedTsIntervalMs: number;
  /** Raw TTL (issue 18): how often a leader looks for expired raw keys to remove, and how many per look. */
  rawTtlCheckTickMs: number;
  rawTtlCheckBatch: number;
  /**
   * A raft message or a request that reaches an idle store loop starts the turn right after the
   * callback it arrived in (a microtask) instead of after the event loop's pending I/O: one hop
   * less at low load, less batching at high load (StoreLoop.schedule). Off by default until it is
   * measured on a quiet machine.
   */
  turnOnArrival: boolean;
  /**
   * A leader's new commit index reaches followers that hold every entry with the next append or
   * heartbeat instead of an append of its own (raft's lazyCommitBroadcast); a split or membership
   * change is still sent at once. At one client this halves the raft messages of a write, and the
   * followers do not take the CPU while the leader applies and answers. Off: etcd's behaviour.
   */
  lazyCommitBroadcast: boolean;
  /**
   * A leader answers plain writes (no split, no membership change) once their kv batch is built
   * and its write started, not after it completes: every read is served after that write
   * (StoreLoop.apply), so no read can miss a write it was told of. Off: answers wait for the write.
   */
  answerBeforeApplyWrite: boolean;
  /**
   * A turn that answered another store's raft message (a follower's append response, a vote)
   * lets the event loop run once before it applies, so the answer reaches the socket then, not
   * after the apply's work: Node writes a stream's frames only when the loop comes round.
   */
  flushAnswersBeforeApply: boolean;
  /**
   * Raft messages to other stores go over plain TCP connections to their port (one per store, no
   * HTTP/2 framing, written as a turn flushes) instead of gRPC streams; snapshots stay on gRPC.
   * Every store takes both; with TLS, gRPC is used whatever this says.
   */
  raftOverTcp: boolean;
  /** Test-only safety switches turned off (see util/deliberate-bugs.ts); never set in production. */
  deliberateBugs?: DeliberateBugs;
}

/**
 * Snapshot receives at once. Each may write up to snapRecvMaxBytes to disk, so this times that
 * is what streams from anywhere can take. Our senders send at most 2 at a time to one store and
 * the scheduler keeps at most 3 in flight to a store it fills, so 4 refuses nothing of a 3-store
 * cluster; beyond, a refused sender reports failure and raft sends again later. (TiKV allows
 * 32, with stores of far more disk and regions than this one targets.)
 */
export const DEFAULT_CONCURRENT_RECV_SNAP_LIMIT = 4;
/**
 * Bytes one received snapshot may declare: 1 GiB, about 7 times the default regionMaxSize (a
 * region's snapshot is its data plus 9 bytes a record). A region outgrows its split size until
 * the next split check, and one user key's versions cannot be split at all, so this is slack
 * for those, not a region's expected size; resolveConfig keeps it at twice regionMaxSize or more.
 */
export const DEFAULT_SNAP_RECV_MAX_BYTES = 1024 * 1024 * 1024;
/**
 * A sender streams its file in 1 MiB chunks as fast as flow control lets it: a minute with no
 * chunk is a dead or hostile peer, not a slow disk (the sender's own deadline is 10 minutes).
 */
export const DEFAULT_SNAP_RECV_IDLE_MS = 60_000;

export const DEFAULT_RAFTSTORE_CONFIG: RaftstoreConfig = {
  raftBaseTickMs: 100,
  raftHeartbeatTicks: 2,
  raftElectionTicks: 10,
  raftLogGcTickMs: 10_000,
  raftLogGcCountLimit: 10_000,
  // TiKV's default: three quarters of the region split size.
  raftLogGcSizeLimit: 72 * 1024 * 1024,
  // TiKV's 8 MiB, plus room for the largest key and the command's envelope: a raw put of a
  // value at the documented 8 MiB limit must fit.
  raftEntryMaxSize: 8 * 1024 * 1024 + 64 * 1024,
  raftEntryCacheSize: 8 * 1024 * 1024,
  raftMaxSizePerMsg: 1024 * 1024,
  raftMaxInflightMsgs: 256,
  splitRegionCheckTickMs: 10_000,
  regionMaxSize: 144 * 1024 * 1024,
  regionSplitSize: 96 * 1024 * 1024,
  concurrentRecvSnapLimit: DEFAULT_CONCURRENT_RECV_SNAP_LIMIT,
  snapRecvMaxBytes: DEFAULT_SNAP_RECV_MAX_BYTES,
  snapRecvIdleMs: DEFAULT_SNAP_RECV_IDLE_MS,
  // Shorter than TinyKV's 10 s: a small cluster converges (replicas, balance) in seconds.
  schedulerHeartbeatTickMs: 1_000,
  schedulerStoreHeartbeatTickMs: 2_000,
  requestTimeoutMs: 10_000,
  leaseReads: true,
  leaseClockDriftPercent: 10,
  resolvedTsIntervalMs: 1_000,
  rawTtlCheckTickMs: 10_000,
  rawTtlCheckBatch: 256,
  turnOnArrival: false,
  lazyCommitBroadcast: true,
  answerBeforeApplyWrite: true,
  flushAnswersBeforeApply: true,
  raftOverTcp: true,
};

/** Short ticks for in-process test clusters (TinyKV's NewTestConfig, a bit faster). */
export const TEST_RAFTSTORE_CONFIG: RaftstoreConfig = {
  ...DEFAULT_RAFTSTORE_CONFIG,
  raftBaseTickMs: 20,
  raftLogGcTickMs: 50,
  raftLogGcCountLimit: 128_000,
  splitRegionCheckTickMs: 100,
  schedulerHeartbeatTickMs: 100,
  schedulerStoreHeartbeatTickMs: 500,
  requestTimeoutMs: 3_000,
  rawTtlCheckTickMs: 100,
};

/**
 * The largest raftEntryMaxSize accepted: an entry must fit one store-to-store gRPC message
 * (16 MiB) with its envelope, or it could never be replicated.
 */
export const MAX_RAFT_ENTRY_MAX_SIZE = 15 * 1024 * 1024;

export class ConfigError extends TinyKvError {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Merges user settings over the defaults, rejecting unknown keys and nonsense values. */
export function resolveConfig(
  partial: Partial<Record<string, unknown>>,
  base: RaftstoreConfig = DEFAULT_RAFTSTORE_CONFIG,
): RaftstoreConfig {
  const out: RaftstoreConfig = { ...base };
  for (const [key, value] of Object.entries(partial)) {
    if (!(key in base)) throw new ConfigError(`unknown raftstore setting ${JSON.stringify(key)}`);
    if (typeof base[key as keyof RaftstoreConfig] === "boolean") {
      if (typeof value !== "boolean") {
        throw new ConfigError(`raftstore setting ${key} must be true or false, got ${JSON.stringify(value)}`);
      }
      (out as unknown as Record<string, boolean>)[key] = value;
      continue;
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`raftstore setting ${key} must be a positive number, got ${JSON.stringify(value)}`);
    }
    (out as unknown as Record<string, number>)[key] = value;
  }
  if (out.raftElectionTicks <= out.raftHeartbeatTicks) {
    throw new ConfigError("raftElectionTicks must be greater than raftHeartbeatTicks");
  }
  if (out.raftEntryMaxSize > MAX_RAFT_ENTRY_MAX_SIZE) {
    throw new ConfigError(
      `raftEntryMaxSize must be at most ${MAX_RAFT_ENTRY_MAX_SIZE} bytes (one entry must fit a 16 MiB raft message)`,
    );
  }
  if (out.leaseClockDriftPercent >= 100) throw new ConfigError("leaseClockDriftPercent must be below 100");
  if (out.regionSplitSize > out.regionMaxSize) throw new ConfigError("regionSplitSize must not exceed regionMaxSize");
  if (out.snapRecvMaxBytes < 2 * out.regionMaxSize) {
    throw new ConfigError(
      "snapRecvMaxBytes must be at least twice regionMaxSize (a region's snapshot must be received)",
    );
  }
  return out;
}

/**
 * How long a leader's lease lasts after the message a quorum acknowledged was sent. A follower
 * that heard from the leader neither campaigns nor grants a vote for `raftElectionTicks` of its
 * ticks; its first tick may come at once, so that is (electionTicks - 1) ticks of real time at
 * the least, less the drift margin.
 */
export function leaderLeaseMs(config: RaftstoreConfig): number {
  const noElectionMs = (config.raftElectionTicks - 1) * config.raftBaseTickMs;
  return (noElectionMs * (100 - config.leaseClockDriftPercent)) / 100;
}
