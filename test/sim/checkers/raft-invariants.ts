// Raft safety over the simulator's event log, per region:
// - election safety: at most one leader per (region, term);
// - state machine safety: every replica that applies index i of a region applies the same entry
//   (same term, same data).
// Feed events one by one (observe) to stop at the first violation, or a whole log (checkRaftLog).
//
// Memory stays bounded however long the run: per region, the last APPLY_WINDOW indexes in a ring
// of typed arrays (term, a 53-bit digest of the entry, who applied it first), no copies of
// entries. A replica applying an index that has already left the window (a replica more than
// APPLY_WINDOW entries behind that catches up from the log, not by snapshot) is counted in
// `uncheckedApplies` rather than compared.

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
  /** The entry's bytes as a string; only its digest is kept. Give `data` or `digest`. */
  data?: string;
  /** A digest of the entry (`digestBytes` of its type and data), when no `data` is given. */
  digest?: number;
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

/** Indexes of a region remembered for comparison (far more than the simulation's log GC keeps). */
export const APPLY_WINDOW = 1024;

/**
 * A 53-bit digest of bytes (cyrb53): cheap, deterministic, and two different entries collide
 * with a chance of about 2^-53, so a divergence is missed only by that chance.
 */
export function digestBytes(bytes: Uint8Array, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    h1 = Math.imul(h1 ^ b, 2654435761);
    h2 = Math.imul(h2 ^ b, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

function digestOf(e: AppliedEvent): number {
  return e.digest ?? digestBytes(Buffer.from(e.data!, "utf8"));
}

function hex(digest: number): string {
  return `#${digest.toString(16).padStart(14, "0")}`;
}

function preview(e: AppliedEvent): string {
  if (e.data === undefined) return hex(digestOf(e));
  return JSON.stringify(e.data.length > 40 ? `${e.data.slice(0, 40)}…` : e.data);
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
  if (e.type === "apply" && typeof e.data !== "string" && !Number.isSafeInteger(e.digest)) {
    throw new TypeError(`raft event ${JSON.stringify(e)}: data must be a string, or digest an integer`);
  }
}

/** The last APPLY_WINDOW applied indexes of one region: slot = index % APPLY_WINDOW. */
class AppliedRing {
  readonly index = new Float64Array(APPLY_WINDOW).fill(-1);
  readonly term = new Float64Array(APPLY_WINDOW);
  readonly digest = new Float64Array(APPLY_WINDOW);
  readonly store = new Float64Array(APPLY_WINDOW);
  /** -1: no peer id given. */
  readonly peer = new Float64Array(APPLY_WINDOW);
  /** NaN: no time given. */
  readonly at = new Float64Array(APPLY_WINDOW);

  eventAt(region: number, slot: number): AppliedEvent {
    const e: AppliedEvent = {
      type: "apply",
      region,
      index: this.index[slot]!,
      term: this.term[slot]!,
      store: this.store[slot]!,
      digest: this.digest[slot]!,
    };
    if (this.peer[slot]! >= 0) e.peer = this.peer[slot]!;
    if (!Number.isNaN(this.at[slot]!)) e.at = this.at[slot]!;
    return e;
  }
}

export class RaftInvariantChecker {
  private readonly leaders = new Map<string, BecameLeaderEvent>();
  private readonly applied = new Map<number, AppliedRing>();
  readonly violations: RaftViolation[] = [];
  events = 0;
  /** (region, index) pairs recorded: entries applied by at least one replica. */
  distinctApplies = 0;
  /** Applies of an index older than the region's window: not compared (see APPLY_WINDOW). */
  uncheckedApplies = 0;

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
    let ring = this.applied.get(e.region);
    if (ring === undefined) {
      ring = new AppliedRing();
      this.applied.set(e.region, ring);
    }
    const slot = e.index % APPLY_WINDOW;
    const recorded = ring.index[slot]!;
    const digest = digestOf(e);
    if (recorded > e.index) {
      this.uncheckedApplies++;
      return undefined;
    }
    if (recorded < e.index) {
      this.distinctApplies++;
      ring.index[slot] = e.index;
      ring.term[slot] = e.term;
      ring.digest[slot] = digest;
      ring.store[slot] = e.store;
      ring.peer[slot] = e.peer ?? -1;
      ring.at[slot] = e.at ?? Number.NaN;
      return undefined;
    }
    if (ring.term[slot] === e.term && ring.digest[slot] === digest) return undefined;
    const first = ring.eventAt(e.region, slot);
    return {
      kind: "divergent-apply",
      region: e.region,
      index: e.index,
      first,
      second: e,
      message:
        `region ${e.region} index ${e.index} applied differently: ${replica(first)}${when(first)} applied ` +
        `term ${first.term} ${preview(first)}, ${replica(e)}${when(e)} applied term ${e.term} ${preview(e)}`,
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
