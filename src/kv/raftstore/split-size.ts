/** What the split checker knows of one region's size, and what was written since it last looked. */
export class RegionSizeTracker {
  /** Approximate region size in bytes from the last split check; undefined until measured. */
  private measured: number | undefined;
  /** Bytes written since the last split check. */
  private writtenSinceCheck = 0;

  get approximateSize(): number | undefined {
    return this.measured;
  }

  /** Bytes of keys and values an apply just wrote. */
  wrote(bytes: number): void {
    this.writtenSinceCheck += bytes;
  }

  /** True when the region was never measured or enough was written since its last split check. */
  checkDue(minWrittenBytes: number): boolean {
    return this.measured === undefined || this.writtenSinceCheck >= minWrittenBytes;
  }

  checked(approximateSize: number): void {
    this.measured = approximateSize;
    this.writtenSinceCheck = 0;
  }
}
