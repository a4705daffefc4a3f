// Raft safety over the simulator's event log, per region:
// - election safety: at most one leader per (region, term);
// - state machine safety: every replica that applies index i of a region applies the same entry
//   (same term, same data).
// Feed events one by one (observe) to stop at the first violation, or a whole log (checkRaftLog).

export interface BecameLeaderEvent {
  type: "leader";
  region: number;
  term: number;
  store: number;
  /** The peer id, when known: a peer removed and re-added on the same store is another replica. */
  peer?: number;
  at?: number;
}

export interface AppliedEvent {
  type: "apply";
  region: number;
  index: number;
  /** The term of the entry applied. */
  term: number;
  store: number;
  peer?: number;
  /** The entry's data, or a digest of it: compared byte for byte as a string. */
  data: string;
  at?: number;
}

export type RaftEvent = BecameLeaderEvent | AppliedEvent;

export type RaftViolationKind = "two-leaders" | "divergent-apply";

export interface RaftViolation {
  kind: RaftViolationKind;
  region: number;
  /** The term (two-leaders) or the index (divergent-apply) at issue. */
  term?: number;
  index?: number;
  first: RaftEvent;
  second: RaftEvent;
  message: string;
}

function replica(e: RaftEvent): string {
  return e.peer !== undefined ? `store ${e.store} peer ${e.peer}` : `store ${e.store}`;
}

function when(e: RaftEvent): string {
  return e.at !== undefined ? ` at ${e.at}` : "";
}

function preview(data: string): string {
  return JSON.stringify(data.length > 40 ? data.slice(0, 40) + "…" : data);
}

function validate(e: RaftEvent): void {
  const ints: Array<[string, unknown]> = [
    ["region", e.region],
    ["term", e.term],
    ["store", e.store],
  ];
  if (e.type === "apply") ints.push(["index", e.index]);
  else if (e.type !== "leader") throw new TypeError(`raft event of unknown type: ${JSON.stringify(e)}`);
  for (const [name, v] of ints) {
    if (!Number.isSafeInteger(v)) throw new TypeError(`raft event ${JSON.stringify(e)}: ${name} must be an integer`);
  }
  if (e.type === "apply" && typeof e.data !== "string") {
    throw new TypeError(`raft event ${JSON.stringify(e)}: data must be a string`);
  }
}

export class RaftInvariantChecker {
  private readonly leaders = new Map<string, BecameLeaderEvent>();
  private readonly applied = new Map<string, AppliedEvent>();
  readonly violations: RaftViolation[] = [];
  events = 0;

  /** Records one event; returns the violation it reveals, if any (also kept in `violations`). */
  observe(event: RaftEvent): RaftViolation | undefined {
    validate(event);
    this.events++;
    const violation = event.type === "leader" ? this.observeLeader(event) : this.observeApply(event);
    if (violation) this.violations.push(violation);
    return violation;
  }

  private observeLeader(e: BecameLeaderEvent): RaftViolation | undefined {
    const slot = `${e.region}/${e.term}`;
    const first = this.leaders.get(slot);
    if (first === undefined) {
      this.leaders.set(slot, e);
      return undefined;
    }
    if (replica(first) === replica(e)) return undefined;
    return {
      kind: "two-leaders",
      region: e.region,
      term: e.term,
      first,
      second: e,
      message:
        `region ${e.region} term ${e.term} has two leaders: ${replica(first)}${when(first)} ` +
        `and ${replica(e)}${when(e)}`,
    };
  }

  private observeApply(e: AppliedEvent): RaftViolation | undefined {
    const slot = `${e.region}/${e.index}`;
    const first = this.applied.get(slot);
    if (first === undefined) {
      this.applied.set(slot, e);
      return undefined;
    }
    if (first.term === e.term && first.data === e.data) return undefined;
    return {
      kind: "divergent-apply",
      region: e.region,
      index: e.index,
      first,
      second: e,
      message:
        `region ${e.region} index ${e.index} applied differently: ${replica(first)}${when(first)} applied ` +
        `term ${first.term} ${preview(first.data)}, ${replica(e)}${when(e)} applied term ${e.term} ${preview(e.data)}`,
    };
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  report(): string {
    if (this.ok) return `raft invariants held over ${this.events} events`;
    return this.violations.map((v) => v.message).join("\n");
  }
}

/** Checks a whole event log; the result lists every violation, in log order. */
export function checkRaftLog(events: Iterable<RaftEvent>): RaftInvariantChecker {
  const checker = new RaftInvariantChecker();
  for (const e of events) checker.observe(e);
  return checker;
}
