/**
 * The simulation's Runtime: a virtual clock, one seeded event queue for every timer, interval and
 * deferral, and seeded randomness. `runUntil` is the driver: it pops the earliest event, moves
 * the clock to it, runs it, and lets the promise continuations it started settle before the next
 * one. The driver's await of a real `setImmediate` is the only contact with real time: every
 * microtask queued by the event runs before a real macrotask can, so one real tick is quiescence
 * as long as the code under test takes all its asynchrony from this runtime (the
 * runtime-globals architecture test keeps src/ honest about that).
 */
import type { Hash } from "node:crypto";
import { createHash } from "node:crypto";
import { setImmediate as realSetImmediate } from "node:timers";
import type { Runtime, TimerHandle } from "../../../src/util/runtime.js";
import type { Rng } from "../../../src/util/random.js";
import { mulberry32 } from "../../../src/util/random.js";

export type EventKind = "timeout" | "interval" | "defer" | "sim";

interface SimEvent {
  at: number;
  /** Tie-break at equal times: the order events were scheduled in. */
  seq: number;
  kind: EventKind;
  /** A timer's label is its handle's ("t<id>", "i<id>"), made only when it runs: most timeouts are cleared first. */
  label: string;
  fn: () => void;
  handle?: SimTimer;
}

/**
 * How the driver lets an event's continuations settle before the next event: a real
 * `setImmediate` (the default), or a `process.nextTick` queued from a microtask, which runs only
 * once the microtask queue is empty and costs no turn of the event loop. "tick" is for a process
 * that runs nothing else (`make sim`): between its periodic real macrotasks (one every
 * TICK_SETTLES_PER_IMMEDIATE events) the event loop of a host such as a test runner would starve.
 * It assumes, as the determinism already does, that nothing under test uses process.nextTick.
 */
export type SettleBy = "immediate" | "tick";

const TICK_SETTLES_PER_IMMEDIATE = 1_000;

/** One call of runUntil: its bounds and counts. */
interface DriverRun {
  until: number;
  stop: () => boolean;
  ran: number;
  sameInstant: number;
}

class SimTimer {
  cancelled = false;
  constructor(
    readonly id: number,
    readonly intervalMs: number | undefined,
  ) {}

  get label(): string {
    return `${this.intervalMs === undefined ? "t" : "i"}${this.id}`;
  }
}

/** A binary min-heap on (at, seq): the one event queue. */
class EventHeap {
  private readonly items: SimEvent[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): SimEvent | undefined {
    return this.items[0];
  }

  push(e: SimEvent): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** This many events in a row at one simulated instant is a livelock (the clock would never move). */
const MAX_EVENTS_AT_ONE_INSTANT = 200_000;

/** Trace text fed to the hash at a time. */
const HASH_CHUNK_CHARS = 1 << 16;

/** The simulated epoch: a fixed wall-clock start so `now()` looks like a date and replays exactly. */
export const SIM_EPOCH_MS = 1_700_000_000_000;

export class SimRuntime implements Runtime {
  private clock = SIM_EPOCH_MS;
  private seq = 0;
  private timerIds = 0;
  private readonly queue = new EventHeap();
  private readonly rng: Rng;
  private readonly hash: Hash = createHash("sha256");
  /** Trace lines recorded but not yet fed to `hash`. */
  private unhashed = "";
  /** The last `tailLength` trace lines, a ring: `tailNext` is where the next one goes. */
  private readonly tail: string[] = [];
  private tailNext = 0;
  private readonly nodeClocks = new Map<string, NodeClock>();
  /** Events run so far. */
  events = 0;
  /** An event threw: the simulation is broken (code under test must not throw out of a timer). */
  readonly eventErrors: Array<{ line: string; err: unknown }> = [];
  /** Set when the driver stopped because the clock stopped moving. */
  livelock: string | undefined;

  constructor(
    readonly seed: number,
    private readonly tailLength = 40,
    private readonly settleBy: SettleBy = "immediate",
  ) {
    this.rng = mulberry32(seed);
  }

  now(): number {
    return this.clock;
  }

  monotonicNow(): number {
    return this.clock;
  }

  /** Simulated ms since the start. */
  get elapsedMs(): number {
    return this.clock - SIM_EPOCH_MS;
  }

  random(): number {
    return this.rng();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = new SimTimer(++this.timerIds, undefined);
    this.push("timeout", "", Math.max(0, ms), fn, timer);
    return timer;
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const timer = new SimTimer(++this.timerIds, Math.max(1, Math.ceil(ms)));
    this.push("interval", "", timer.intervalMs!, fn, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle instanceof SimTimer) handle.cancelled = true;
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  defer(fn: () => void): void {
    this.push("defer", "", 0, fn);
  }

  /** Schedules a step of the simulation itself (a fault, a client op) with a label for the trace. */
  schedule(label: string, ms: number, fn: () => void): void {
    this.push("sim", label, Math.max(0, ms), fn);
  }

  /** Adds a line to the trace (e.g. an operation's outcome) without an event. */
  note(line: string): void {
    this.record(`${this.elapsedMs} note ${line}`);
  }

  private push(kind: EventKind, label: string, ms: number, fn: () => void, handle?: SimTimer): void {
    // Whole milliseconds, as Node's timers coerce their delay: now() stays an integer like Date.now().
    this.queue.push({ at: this.clock + Math.ceil(ms), seq: ++this.seq, kind, label, fn, handle });
  }

  private record(line: string): void {
    // One hash update per chunk, not per line: sha256 of the concatenation is the same digest.
    this.unhashed += `${line}\n`;
    if (this.unhashed.length >= HASH_CHUNK_CHARS) this.flushHash();
    if (this.tailLength <= 0) return;
    this.tail[this.tailNext] = line;
    this.tailNext = (this.tailNext + 1) % this.tailLength;
  }

  private flushHash(): void {
    this.hash.update(this.unhashed);
    this.unhashed = "";
  }

  /**
   * Runs events until the clock would pass `untilMs` (simulated ms since the start), `stop()`
   * says so, or the queue is empty. Returns the number of events run.
   */
  runUntil(untilMs: number, stop: () => boolean = () => false): Promise<number> {
    const run: DriverRun = { until: SIM_EPOCH_MS + untilMs, stop, ran: 0, sameInstant: 0 };
    // A callback chain rather than an async loop: one real macrotask per event and no promise of
    // the driver's own in between (the per-event overhead is most of what the driver costs).
    return new Promise<number>((resolve) => {
      const tickStep = (): void => process.nextTick(step);
      const step = (): void => {
        // Every continuation the last event started settles before the next event.
        if (!this.runNext(run)) resolve(run.ran);
        else if (this.settleBy === "immediate" || run.ran % TICK_SETTLES_PER_IMMEDIATE === 0) realSetImmediate(step);
        // Queued from a microtask, the tick runs once the microtask queue is empty (Node runs
        // the next-tick queue only then): the same point a real macrotask would reach.
        else queueMicrotask(tickStep);
      };
      step();
    });
  }

  /** Runs the next due event of `run`; false when the run is over. */
  private runNext(run: DriverRun): boolean {
    for (;;) {
      if (run.stop()) return false;
      const next = this.queue.peek();
      if (!next || next.at > run.until) {
        if (!next || this.clock < run.until) this.clock = Math.max(this.clock, run.until);
        return false;
      }
      this.queue.pop();
      if (next.handle?.cancelled) continue;
      run.sameInstant = next.at === this.clock ? run.sameInstant + 1 : 0;
      if (run.sameInstant > MAX_EVENTS_AT_ONE_INSTANT) {
        this.livelock = `${MAX_EVENTS_AT_ONE_INSTANT} events at ${this.elapsedMs} simulated ms without the clock moving (last: ${next.kind} ${next.handle ? next.handle.label : next.label})`;
        return false;
      }
      this.clock = next.at;
      const line = `${this.elapsedMs} ${next.kind} ${next.handle ? next.handle.label : next.label}`;
      this.record(line);
      this.events++;
      run.ran++;
      if (next.handle?.intervalMs !== undefined)
        this.queue.push({ ...next, at: this.clock + next.handle.intervalMs, seq: ++this.seq });
      try {
        next.fn();
      } catch (err) {
        this.eventErrors.push({ line, err });
        this.record(`${this.elapsedMs} error ${err instanceof Error ? err.message : String(err)}`);
      }
      return true;
    }
  }

  /** `name`'s own view of the clock (one per node, made on first use): see NodeClock. */
  nodeClock(name: string): NodeClock {
    let clock = this.nodeClocks.get(name);
    if (!clock) {
      clock = new NodeClock(this, name);
      this.nodeClocks.set(name, clock);
    }
    return clock;
  }

  /** Lets pending continuations settle without running an event (after a direct call into the code). */
  settle(): Promise<void> {
    return new Promise((resolve) => realSetImmediate(resolve));
  }

  get pendingEvents(): number {
    return this.queue.size;
  }

  /** The last trace lines, oldest first. */
  traceTail(): string[] {
    return [...this.tail.slice(this.tailNext), ...this.tail.slice(0, this.tailNext)];
  }

  /** sha256 of every trace line so far; call once, at the end. */
  traceHash(): string {
    this.flushHash();
    return this.hash.copy().digest("hex");
  }
}

/**
 * One node's view of the simulated clock: `now()` is the shared clock plus this node's offset
 * (a skew, or the sum of the jumps a fault made), as a node's wall clock can be off or be
 * stepped by NTP. Timers, deferrals and randomness stay on the one queue and stream: a real
 * node's timers run on a monotonic clock that a wall-clock step does not move.
 *
 * A node can also be paused (a stop-the-world GC, a stalled VM): its timers and deferrals that
 * come due meanwhile are held and run, in order, when it resumes.
 */
export class NodeClock implements Runtime {
  /** Added to the shared clock's reading; a clock fault changes it. */
  private offset = 0;
  private held: Array<() => void> | undefined;

  constructor(
    private readonly sim: SimRuntime,
    readonly name: string,
  ) {}

  get offsetMs(): number {
    return this.offset;
  }

  get paused(): boolean {
    return this.held !== undefined;
  }

  /** Steps this node's wall clock by `deltaMs` (negative: back in time); noted in the trace. */
  step(deltaMs: number): void {
    this.offset += deltaMs;
    this.sim.note(`clock ${this.name} ${deltaMs >= 0 ? "+" : ""}${deltaMs}ms (offset ${this.offset}ms)`);
  }

  pause(): void {
    this.held ??= [];
    this.sim.note(`${this.name} paused`);
  }

  /** Runs what came due during the pause, oldest first, each as its own event. */
  resume(): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.sim.note(`${this.name} resumed (${held.length} held callbacks)`);
    for (const fn of held) this.sim.defer(fn);
  }

  now(): number {
    return this.sim.now() + this.offset;
  }

  /** The shared clock without the wall-clock offset: a clock fault steps the wall clock, not this one. */
  monotonicNow(): number {
    return this.sim.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = this.sim.setTimeout(() => {
      if (!this.held) return fn();
      // Cleared while held: it must not run on resume either.
      this.held.push(() => void (!(handle as SimTimer).cancelled && fn()));
    }, ms);
    return handle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.sim.clearTimeout(handle);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    // A paused process sees one late tick on resume, not every one it missed.
    let waiting = false;
    const handle = this.sim.setInterval(() => {
      if (!this.held) return fn();
      if (waiting) return;
      waiting = true;
      this.held.push(() => {
        waiting = false;
        if (!(handle as SimTimer).cancelled) fn();
      });
    }, ms);
    return handle;
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.sim.clearInterval(handle);
  }

  defer(fn: () => void): void {
    this.sim.defer(() => {
      if (this.held) this.held.push(fn);
      else fn();
    });
  }

  random(): number {
    return this.sim.random();
  }
}
