/**
 * Per-key latches for the standalone storage: a conditional write's read, compare and write, and
 * every plain write of the same keys, run one at a time in arrival order. Each holder registers
 * on all its keys at once, synchronously, so waits always point at earlier holders: no deadlock.
 */
export class KeyLatches {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(keys: Iterable<string>): Promise<() => void> {
    const unique = [...new Set(keys)];
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const earlier: Promise<void>[] = [];
    for (const k of unique) {
      const tail = this.tails.get(k);
      if (tail) earlier.push(tail);
      this.tails.set(k, mine);
    }
    await Promise.all(earlier);
    return () => {
      for (const k of unique) if (this.tails.get(k) === mine) this.tails.delete(k);
      release();
    };
  }
}
