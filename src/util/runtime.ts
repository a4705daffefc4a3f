/**
 * Time, timers, deferral and randomness, injected. Everything above the Raft library takes them
 * from a Runtime instead of the globals, so a deterministic simulation can run the real code on
 * a virtual clock with seeded randomness. Production passes `realRuntime`.
 */
export interface Runtime {
  /** Milliseconds since the epoch (virtual in a simulation). */
  now(): number;
  /**
   * Milliseconds on a clock that only moves forward at a steady rate (performance.now()): what a
   * wall-clock step (NTP, an operator) cannot move, so durations that safety depends on use it.
   */
  monotonicNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Runs `fn` after the current work and pending I/O callbacks (Node's setImmediate). */
  defer(fn: () => void): void;
  /**
   * Runs `fn` right after the current callback, before any other I/O (a microtask): for work that
   * should follow an arrival at once rather than wait for the next turn of the event loop. A
   * runtime that must see every callback (a simulation holds a paused node's) leaves it out, and
   * callers fall back to `defer`.
   */
  soon?(fn: () => void): void;
  /** Uniform in [0, 1). */
  random(): number;
}

/** An opaque timer; only the runtime that made it can clear it. */
export type TimerHandle = object;

export const realRuntime: Runtime = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
  defer: (fn) => void setImmediate(fn),
  soon: (fn) => queueMicrotask(fn),
  random: () => Math.random(),
};

/** Resolves after `ms` on the runtime's clock. */
export function sleep(runtime: Runtime, ms: number): Promise<void> {
  return new Promise((resolve) => runtime.setTimeout(resolve, ms));
}
