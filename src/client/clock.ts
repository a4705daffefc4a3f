/**
 * Time as the client's transaction code sees it: a clock and one-shot timers, injected so that a
 * test or a simulated runtime controls time (the system clock by default).
 */
export interface ClientClock {
  nowMs(): number;
  /** Runs `fn` once after `ms`; the returned function cancels it if it has not run yet. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: ClientClock = {
  nowMs: () => Date.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    // A heartbeat alone must not keep a process alive that has nothing else to do.
    timer.unref();
    return () => clearTimeout(timer);
  },
};
