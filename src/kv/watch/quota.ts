/**
 * The store's memory for change feeds, shared by all of them: each feed also has its own cap
 * (FeedOptions.maxPendingBytes), but many watchers that stop reading would otherwise hold a cap
 * each. A feed takes bytes as changes queue for its watcher and gives them back as they are sent
 * or when it ends; a feed that cannot take them ends with ServerIsBusy and its watcher resumes
 * from its last position, as it does after its own cap.
 */
export class FeedMemoryQuota {
  private used = 0;

  constructor(readonly limitBytes: number) {
    if (!Number.isFinite(limitBytes) || limitBytes <= 0)
      throw new RangeError(`change feed memory quota must be a positive number of bytes, not ${limitBytes}`);
  }

  /** Takes `bytes` if they fit under the limit; false, taking nothing, if they do not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get usedBytes(): number {
    return this.used;
  }
}
