import type { MetaKV } from "../core/meta-kv.js";
import type { SchedulerMember } from "./member.js";
import type { MemberStorage } from "./member-storage.js";

/**
 * The MetaKV a leader's SchedulerCore runs on: reads see this member's applied metadata, and each
 * write is a Raft proposal that resolves once applied here, so it is on a quorum's disks first.
 * Bound to one term: after a leader change it refuses every write, so a core left over from an
 * old term cannot change anything even if it still runs for a moment.
 */
export class ReplicatedMetaKV implements MetaKV {
  constructor(
    private readonly member: SchedulerMember,
    private readonly storage: MemberStorage,
    readonly term: bigint,
  ) {}

  get(key: string): Promise<Buffer | undefined> {
    return this.storage.get(key);
  }

  scanPrefix(prefix: string): Promise<Array<[string, Buffer]>> {
    return this.storage.scanPrefix(prefix);
  }

  /** Every write goes through the log, so `sync` is implied: a quorum stored it before it applied. */
  write(puts: ReadonlyArray<readonly [string, Buffer]>, dels: readonly string[]): Promise<void> {
    return this.member.propose(
      { puts: puts.map(([key, value]) => ({ key, value })), deletes: [...dels], barrier: false },
      this.term,
    );
  }

  /** The member owns the storage: a core closing at a leader change leaves it open. */
  async close(): Promise<void> {}
}
