import type { ClassicLevel } from "classic-level";
import type { ConfState, Entry, HardState, RaftLogStorage, Snapshot } from "../../raft/index.js";
import { Entry as EntryCodec, HardState as HardStateCodec, MemoryStorage } from "../../raft/index.js";
import type { MetaWrite } from "../../proto/schedulerraftpb.js";
import { CorruptMetadataError } from "../errors.js";
import { openSchedulerLevel } from "../core/meta-kv.js";

/**
 * Key layout of a member's one LevelDB (`<dataDir>/member`). The raft log, the hard state and the
 * applied state machine share it, so one synced batch per loop turn persists new entries, the
 * hard state, the applied writes and the applied index together (group commit, no torn state).
 */
const K = {
  hardState: "raft/hard_state",
  log: "raft/log/",
  applied: "sm/applied",
  data: "sm/kv/",
} as const;

function logKey(index: bigint): string {
  return K.log + index.toString().padStart(20, "0");
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

/** What one loop turn persists: a Ready's log and hard state, and the writes it applied. */
export interface TurnWrite {
  entries: Entry[];
  hardState?: HardState;
  applied: MetaWrite[];
  appliedIndex?: bigint;
  sync: boolean;
}

/**
 * A member's durable state. The whole log is also kept in memory (the raft library reads it
 * synchronously): scheduler metadata is small, and the log is never compacted yet, so its size is
 * bounded by how many metadata writes the cluster made (see the design notes).
 */
export class MemberStorage implements RaftLogStorage {
  private readonly mem = new MemoryStorage();
  private appliedIndex = 0n;

  private constructor(private readonly db: ClassicLevel<string, Buffer>) {}

  static async open(dataDir: string): Promise<MemberStorage> {
    const s = new MemberStorage(await openSchedulerLevel(dataDir, "member"));
    await s.load();
    return s;
  }

  private async load(): Promise<void> {
    const hs = await this.db.get(K.hardState);
    if (hs) this.mem.setHardState(decodeOrThrow(K.hardState, () => HardStateCodec.decode(hs)));
    const entries: Entry[] = [];
    for await (const [k, v] of this.db.iterator({ gte: K.log, lt: `${K.log}\xff` })) {
      const e = decodeOrThrow(k, () => EntryCodec.decode(v));
      const expected = (entries.at(-1)?.index ?? 0n) + 1n;
      if (e.index !== expected)
        throw new CorruptMetadataError(k, `log entry ${e.index} where ${expected} was expected`);
      entries.push(e);
    }
    this.mem.append(entries);
    const applied = await this.db.get(K.applied);
    if (applied) this.appliedIndex = applied.readBigUInt64BE();
  }

  /** The index of the last entry whose writes are in the state machine. */
  get applied(): bigint {
    return this.appliedIndex;
  }

  // ---- RaftLogStorage (what the raft library reads) ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: bigint, hi: bigint, maxSizeBytes?: number): Entry[] {
    return this.mem.entries(lo, hi, maxSizeBytes);
  }
  term(i: bigint): bigint {
    return this.mem.term(i);
  }
  firstIndex(): bigint {
    return this.mem.firstIndex();
  }
  lastIndex(): bigint {
    return this.mem.lastIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  /** Persists one loop turn in one batch (synced when the Ready says so), then updates the memory copy. */
  async persist(turn: TurnWrite): Promise<void> {
    const batch = this.db.batch();
    if (turn.entries.length > 0) {
      // A conflicting suffix beyond the new entries is gone from the log: delete its keys.
      const newLast = turn.entries.at(-1)!.index;
      for (let i = newLast + 1n; i <= this.mem.lastIndex(); i++) batch.del(logKey(i));
      for (const e of turn.entries) batch.put(logKey(e.index), Buffer.from(EntryCodec.encode(e).finish()));
    }
    if (turn.hardState) batch.put(K.hardState, Buffer.from(HardStateCodec.encode(turn.hardState).finish()));
    for (const w of turn.applied) {
      for (const p of w.puts) batch.put(K.data + p.key, Buffer.from(p.value));
      for (const d of w.deletes) batch.del(K.data + d);
    }
    if (turn.appliedIndex !== undefined) batch.put(K.applied, u64(turn.appliedIndex));
    await batch.write({ sync: turn.sync });
    if (turn.entries.length > 0) this.mem.append(turn.entries);
    if (turn.hardState) this.mem.setHardState(turn.hardState);
    if (turn.appliedIndex !== undefined) this.appliedIndex = turn.appliedIndex;
  }

  // ---- the applied metadata (what MetaStorage reads) ----

  async get(key: string): Promise<Buffer | undefined> {
    return (await this.db.get(K.data + key)) ?? undefined;
  }

  async scanPrefix(prefix: string): Promise<Array<[string, Buffer]>> {
    const out: Array<[string, Buffer]> = [];
    const from = K.data + prefix;
    for await (const [k, v] of this.db.iterator({ gte: from, lt: `${from}\xff` }))
      out.push([k.slice(K.data.length), v]);
    return out;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

function decodeOrThrow<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CorruptMetadataError(key, (err as Error).message);
  }
}
