import type { Error as RegionErrorPb } from "../../proto/errorpb.js";
import type { RaftCmdResponse } from "../../proto/raft_cmdpb.js";
import { errorResponse, regionErrors } from "./errors.js";
import type { WriteTimeline } from "./observer.js";
import { hopTrace } from "../../util/hop-trace.js";

/**
 * A write whose entry is in the log, waiting for it to apply, matched by index and term. It has
 * no deadline: only its apply (or StaleCommand, when the outcome becomes unknown) answers it.
 */
export interface Proposal {
  index: bigint;
  term: bigint;
  done(resp: RaftCmdResponse): void;
  timeline?: WriteTimeline;
  /** Raft reported its entry committed (told to the timeline once). */
  committed?: boolean;
}

/** A normal command waiting for the next turn, proposed together with the others as one batch. */
export interface QueuedCommand {
  data: Buffer;
  done(resp: RaftCmdResponse): void;
  timeline?: WriteTimeline;
}

/** One peer's writes: queued for the next turn, then in the log until their entry applies. */
export class Proposals {
  private inLog: Proposal[] = [];
  private queued: QueuedCommand[] = [];

  queue(command: QueuedCommand): void {
    this.queued.push(command);
  }

  /** The commands queued since the last turn, removed from the queue. */
  takeQueued(): QueuedCommand[] {
    return this.queued.splice(0);
  }

  /** Records proposals whose entries start at `firstIndex` in `term`, in order. */
  inTheLog(
    firstIndex: bigint,
    term: bigint,
    commands: ReadonlyArray<{ done(resp: RaftCmdResponse): void; timeline?: WriteTimeline }>,
  ): void {
    this.dropOverwritten(firstIndex, term);
    commands.forEach((c, i) => {
      c.timeline?.proposed();
      this.inLog.push({ index: firstIndex + BigInt(i), term, done: c.done, timeline: c.timeline });
    });
  }

  /** Raft committed the log up to `index`: the writes there reached their commit stage. */
  committedUpTo(index: bigint): void {
    for (const p of this.inLog) {
      if (p.index > index) return;
      if (p.committed) continue;
      p.committed = true;
      p.timeline?.committed();
    }
  }

  /** Answers the proposals that `(index, term)` settles: earlier ones were lost (stale), a term mismatch is stale. */
  finish(index: bigint, term: bigint, resp: RaftCmdResponse, currentTerm: bigint): void {
    while (this.inLog.length > 0) {
      const p = this.inLog[0]!;
      if (p.index > index) return;
      this.inLog.shift();
      if (p.index === index && p.term === term) {
        hopTrace?.("answered", index);
        p.done(resp);
        return;
      }
      p.done(errorResponse(regionErrors.staleCommand(), currentTerm));
    }
  }

  /**
   * Answers every waiting write: those never proposed get `error` (safe to retry); those in the
   * log get StaleCommand, because their entries may still commit under another leader.
   */
  failAll(error: RegionErrorPb, currentTerm: bigint): void {
    const unknown = regionErrors.staleCommand(
      `${error.message}: the command is in the raft log and its outcome is unknown`,
    );
    for (const p of this.inLog.splice(0)) p.done(errorResponse(unknown, currentTerm));
    for (const p of this.queued.splice(0)) p.done(errorResponse(error, currentTerm));
  }

  /**
   * A leader that lost and regained leadership between two turns appends its new term's entries
   * from `firstIndex`: its earlier term's proposals at or past it were cut from its log, so their
   * outcome is unknown to the client (StaleCommand, as on any leader change). Those before it are
   * kept, in index order: their entries may still commit, and apply matches index and term.
   */
  private dropOverwritten(firstIndex: bigint, term: bigint): void {
    const cut = (p: Proposal) => p.term !== term && p.index >= firstIndex;
    if (!this.inLog.some(cut)) return;
    const stale = this.inLog.filter(cut);
    this.inLog = this.inLog.filter((p) => !cut(p));
    for (const p of stale) p.done(errorResponse(regionErrors.staleCommand(), term));
  }
}
