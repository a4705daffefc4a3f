/**
 * Monotonic id allocator shared by stores, regions and peers. Ids start at 1; blocks of `step` ids
 * are reserved by persisting the block's end (synced) before any id in it is handed out, so a restart
 * resumes after the last reserved block and never reissues an id.
 */
export class IdAllocator {
  private base: bigint;
  private end: bigint;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly persistEnd: (end: bigint) => Promise<void>,
    persistedEnd: bigint,
    private readonly step = 1000n,
  ) {
    this.base = persistedEnd;
    this.end = persistedEnd;
  }

  /** Ids that can be handed out without touching the disk. */
  available(): bigint {
    return this.end - this.base;
  }

  /** The last id handed out (0 if none). */
  current(): bigint {
    return this.base;
  }

  /** Allocates from the reserved block; throws when it is empty (call `reserve` first). */
  allocSync(): bigint {
    if (this.base >= this.end) throw new Error("id allocator: reserved block exhausted");
    this.base += 1n;
    return this.base;
  }

  async alloc(): Promise<bigint> {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (this.available() > 0n) return this.allocSync();
      await this.reserve(1n);
    }
    throw new Error("id allocator: could not reserve ids after 100 attempts");
  }

  /** Makes sure at least `n` ids are reserved on disk. One reservation write at a time. */
  async reserve(n: bigint): Promise<void> {
    for (let attempt = 0; attempt < 100 && this.available() < n; attempt++) {
      if (!this.inflight) {
        const newEnd = this.end + (n > this.step ? n : this.step);
        this.inflight = this.persistEnd(newEnd)
          .then(() => {
            if (newEnd > this.end) this.end = newEnd;
          })
          .finally(() => {
            this.inflight = undefined;
          });
      }
      await this.inflight;
    }
    if (this.available() < n) throw new Error(`id allocator: could not reserve ${n} ids`);
  }
}
