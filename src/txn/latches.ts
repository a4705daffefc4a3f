/**
 * Per-key latches: commands that touch overlapping keys on one store run one at a time, so the
 * check-then-write of a command (read lock, decide, write) is not interleaved with another's.
 * Commands on disjoint keys never wait for each other. A command takes all of its keys in sorted
 * order, so two commands can never each hold a key the other waits for (no deadlock).
 */

/** The held latches of one command; release exactly once, in a `finally`. */
export interface LatchGuard {
  release(): void;
}

export class Latches {
  /** key → resolvers of the commands waiting for it, in arrival order. Presence = held. */
  private readonly waiters = new Map<string, Array<() => void>>();

  /** Number of keys currently latched, for tests and metrics. */
  get heldCount(): number {
    return this.waiters.size;
  }

  async acquire(keys: readonly Uint8Array[]): Promise<LatchGuard> {
    // latin1 maps each byte to one char, so string order is byte order and dedup is exact.
    const ids = [...new Set(keys.map((k) => Buffer.from(k).toString("latin1")))].sort();
    const taken: string[] = [];
    try {
      for (const id of ids) {
        await this.acquireOne(id);
        taken.push(id);
      }
    } catch (err) {
      for (const id of taken) this.releaseOne(id);
      throw err;
    }
    let released = false;
    return {
      release: () => {
        if (released) throw new Error("latch guard released twice");
        released = true;
        for (const id of taken) this.releaseOne(id);
      },
    };
  }

  private acquireOne(id: string): Promise<void> {
    const queue = this.waiters.get(id);
    if (queue === undefined) {
      this.waiters.set(id, []);
      return Promise.resolve();
    }
    return new Promise((resolve) => queue.push(resolve));
  }

  /** Hands the latch straight to the next waiter (FIFO), or frees it. */
  private releaseOne(id: string): void {
    const queue = this.waiters.get(id);
    if (queue === undefined) throw new Error(`latch ${JSON.stringify(id)} released but not held`);
    const next = queue.shift();
    if (next === undefined) this.waiters.delete(id);
    else next();
  }
}
