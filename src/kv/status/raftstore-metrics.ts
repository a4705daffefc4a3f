/**
 * The raftstore's stages as Prometheus series, and the slow log: a write slower than `slowMs`
 * logs one line with its stages (queued until proposed, proposed until committed, committed
 * until answered) and its region; a read likewise (queued until its ReadIndex is sent, sent
 * until raft confirms it, confirmed until apply reaches it and it is answered). Durations come from process.hrtime: observation only, never
 * behaviour, so the raftstore itself reads no clock for them.
 */
import type {
  RaftstoreObserver,
  ReadResult,
  ReadTimeline,
  TurnTimeline,
  WriteOutcome,
  WriteTimeline,
} from "../raftstore/observer.js";
import type { Logger } from "../../util/logger.js";
import type { Registry } from "../../util/metrics.js";
import { Counter, Histogram, LATENCY_BUCKETS_SECONDS } from "../../util/metrics.js";

const nowNs = (): bigint => process.hrtime.bigint();
const seconds = (fromNs: bigint, toNs: bigint): number => Number(toNs - fromNs) / 1e9;
/** Milliseconds between two marks to 0.1 ms, or null when a stage was never reached. */
const roundMs = (from: bigint | undefined, to: bigint | undefined): number | null =>
  from !== undefined && to !== undefined ? Math.round(seconds(from, to) * 1e4) / 10 : null;
const COUNT_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

export class RaftstoreMetrics implements RaftstoreObserver {
  private readonly stage: Histogram<"stage">;
  private readonly writes: Counter<"outcome">;
  private readonly turnSeconds: Histogram;
  private readonly fsyncSeconds: Histogram;
  private readonly applyWriteSeconds: Histogram;
  private readonly turnEntries: Histogram;
  private readonly turnApplied: Histogram;
  private readonly turnReadies: Histogram;
  // Label children bound once, so a write or a turn does no label hashing.
  private readonly stages: Record<"propose" | "commit" | "apply", ReturnType<Histogram<"stage">["labels"]>>;
  private readonly outcomes: Record<WriteOutcome, ReturnType<Counter<"outcome">["labels"]>>;
  private readonly raftWrites: Record<"true" | "false", ReturnType<Histogram<"sync">["labels"]>>;
  private readonly readStages: Record<"queue" | "confirm" | "apply", ReturnType<Histogram<"stage">["labels"]>>;
  private readonly readOutcomes: Record<ReadResult, ReturnType<Counter<"outcome">["labels"]>>;
  private readonly snapshotsSent: Record<"complete" | "aborted", ReturnType<Counter<"outcome">["labels"]>>;
  private readonly snapshotsReceived: Record<"accepted" | "refused", ReturnType<Counter<"outcome">["labels"]>>;
  private readonly snapshotSentBytes: Counter;
  private readonly snapshotReceivedBytes: Counter;
  private readonly logGcRuns: Counter;
  private readonly logGcEntries: Counter;

  constructor(
    registry: Registry,
    private readonly log: Logger,
    /** A write answered later than this logs its stages (0: never). */
    private readonly slowMs: number,
  ) {
    const registers = [registry];
    this.stage = new Histogram({
      name: "tinykv_raftstore_write_stage_duration_seconds",
      help: "A write's time in each stage on its leader: propose (arrival until its entry is appended), commit (until raft commits it), apply (until it is applied and answered)",
      labelNames: ["stage"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.writes = new Counter({
      name: "tinykv_raftstore_writes_total",
      help: "Writes answered, by outcome (applied, stale, refused)",
      labelNames: ["outcome"],
      registers,
    });
    this.turnSeconds = new Histogram({
      name: "tinykv_raftstore_turn_duration_seconds",
      help: "One store-loop turn: persist, send, apply, respond",
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: "tinykv_raft_engine_write_duration_seconds",
      help: "The raft engine's batch write of one turn (synced: group commit)",
      labelNames: ["sync"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.applyWriteSeconds = new Histogram({
      name: "tinykv_kv_engine_apply_write_duration_seconds",
      help: "The kv engine's batch write of one turn's applied entries",
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.turnReadies = new Histogram({
      name: "tinykv_raftstore_turn_readies",
      help: "Peers with a Ready in one turn",
      buckets: COUNT_BUCKETS,
      registers,
    });
    this.turnEntries = new Histogram({
      name: "tinykv_raftstore_turn_log_entries",
      help: "Log entries persisted in one turn's raft batch",
      buckets: COUNT_BUCKETS,
      registers,
    });
    this.turnApplied = new Histogram({
      name: "tinykv_raftstore_turn_applied_entries",
      help: "Committed entries applied in one turn's kv batch",
      buckets: COUNT_BUCKETS,
      registers,
    });
    this.stages = {
      propose: this.stage.labels("propose"),
      commit: this.stage.labels("commit"),
      apply: this.stage.labels("apply"),
    };
    this.outcomes = {
      applied: this.writes.labels("applied"),
      stale: this.writes.labels("stale"),
      refused: this.writes.labels("refused"),
    };
    this.raftWrites = { true: this.fsyncSeconds.labels("true"), false: this.fsyncSeconds.labels("false") };
    const readStage = new Histogram({
      name: "tinykv_raftstore_read_stage_duration_seconds",
      help: "A linearizable read's time in each stage on its leader: queue (arrival until its ReadIndex is sent), confirm (until raft confirms the read index), apply (until apply reaches it and the read is answered)",
      labelNames: ["stage"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    const reads = new Counter({
      name: "tinykv_raftstore_reads_total",
      help: "Linearizable reads answered, by outcome (served, refused)",
      labelNames: ["outcome"],
      registers,
    });
    this.readStages = {
      queue: readStage.labels("queue"),
      confirm: readStage.labels("confirm"),
      apply: readStage.labels("apply"),
    };
    this.readOutcomes = { served: reads.labels("served"), refused: reads.labels("refused") };
    const sent = new Counter({
      name: "tinykv_raftstore_snapshots_sent_total",
      help: "Snapshot streams to other stores that ended, by outcome (complete: the whole file went out; aborted)",
      labelNames: ["outcome"],
      registers,
    });
    this.snapshotsSent = { complete: sent.labels("complete"), aborted: sent.labels("aborted") };
    const received = new Counter({
      name: "tinykv_raftstore_snapshots_received_total",
      help: "Snapshot streams from other stores that ended, by outcome (accepted: saved and handed to its peer; refused)",
      labelNames: ["outcome"],
      registers,
    });
    this.snapshotsReceived = { accepted: received.labels("accepted"), refused: received.labels("refused") };
    this.snapshotSentBytes = new Counter({
      name: "tinykv_raftstore_snapshot_sent_bytes_total",
      help: "Bytes of snapshot data streamed to other stores",
      registers,
    });
    this.snapshotReceivedBytes = new Counter({
      name: "tinykv_raftstore_snapshot_received_bytes_total",
      help: "Bytes of snapshot data received from other stores",
      registers,
    });
    this.logGcRuns = new Counter({
      name: "tinykv_raftstore_log_gc_total",
      help: "Raft log compactions applied (CompactLog; several in one apply batch count once)",
      registers,
    });
    this.logGcEntries = new Counter({
      name: "tinykv_raftstore_log_gc_entries_total",
      help: "Raft log entries removed by log compaction",
      registers,
    });
    // Every outcome's series exists from the start at 0, so rate() and absent() work from the first scrape.
    for (const child of [
      ...Object.values(this.readOutcomes),
      ...Object.values(this.snapshotsSent),
      ...Object.values(this.snapshotsReceived),
    ])
      child.inc(0);
  }

  snapshotSent(bytes: number, complete: boolean): void {
    this.snapshotsSent[complete ? "complete" : "aborted"].inc();
    this.snapshotSentBytes.inc(bytes);
  }

  snapshotReceived(bytes: number, accepted: boolean): void {
    this.snapshotsReceived[accepted ? "accepted" : "refused"].inc();
    this.snapshotReceivedBytes.inc(bytes);
  }

  logCompacted(entries: number): void {
    this.logGcRuns.inc();
    this.logGcEntries.inc(entries);
  }

  write(regionId: bigint): WriteTimeline {
    const arrived = nowNs();
    let proposed: bigint | undefined;
    let committed: bigint | undefined;
    return {
      proposed: () => {
        proposed = nowNs();
        this.stages.propose.observe(seconds(arrived, proposed));
      },
      committed: () => {
        committed = nowNs();
        if (proposed !== undefined) this.stages.commit.observe(seconds(proposed, committed));
      },
      answered: (outcome: WriteOutcome) => {
        const answered = nowNs();
        this.outcomes[outcome].inc();
        if (committed !== undefined) this.stages.apply.observe(seconds(committed, answered));
        const totalMs = seconds(arrived, answered) * 1000;
        if (this.slowMs > 0 && totalMs >= this.slowMs) {
          this.log.warn(
            {
              region_id: String(regionId),
              outcome,
              total_ms: Math.round(totalMs * 10) / 10,
              queued_ms: roundMs(arrived, proposed),
              commit_ms: roundMs(proposed, committed),
              apply_ms: roundMs(committed, answered),
            },
            "slow write",
          );
        }
      },
    };
  }

  read(regionId: bigint): ReadTimeline {
    const arrived = nowNs();
    let sent: bigint | undefined;
    let confirmed: bigint | undefined;
    return {
      sent: () => {
        sent = nowNs();
        this.readStages.queue.observe(seconds(arrived, sent));
      },
      confirmed: () => {
        confirmed = nowNs();
        if (sent !== undefined) this.readStages.confirm.observe(seconds(sent, confirmed));
      },
      answered: (outcome: ReadResult) => {
        const answered = nowNs();
        this.readOutcomes[outcome].inc();
        if (confirmed !== undefined) this.readStages.apply.observe(seconds(confirmed, answered));
        const totalMs = seconds(arrived, answered) * 1000;
        if (this.slowMs > 0 && totalMs >= this.slowMs) {
          this.log.warn(
            {
              region_id: String(regionId),
              outcome,
              total_ms: roundMs(arrived, answered),
              queued_ms: roundMs(arrived, sent),
              confirm_ms: roundMs(sent, confirmed),
              apply_ms: roundMs(confirmed, answered),
            },
            "slow read",
          );
        }
      },
    };
  }

  turn(): TurnTimeline {
    const start = nowNs();
    let mark = start;
    return {
      persistStarted: () => {
        mark = nowNs();
      },
      persisted: (readies, entries, synced) => {
        this.raftWrites[synced ? "true" : "false"].observe(seconds(mark, nowNs()));
        this.turnReadies.observe(readies);
        this.turnEntries.observe(entries);
      },
      applyStarted: () => {
        mark = nowNs();
      },
      applied: (entries) => {
        this.applyWriteSeconds.observe(seconds(mark, nowNs()));
        this.turnApplied.observe(entries);
      },
      done: () => this.turnSeconds.observe(seconds(start, nowNs())),
    };
  }
}
