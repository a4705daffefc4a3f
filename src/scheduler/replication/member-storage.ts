import type { ClassicLevel } from "classic-level";
import type { ConfState, Entry, HardState, RaftLogStorage, Snapshot } from "../../raft/index.js";
import {
  Entry as EntryCodec,
  HardState as HardStateCodec,
  MemoryStorage,
  Snapshot as SnapshotCodec,
} from "../../raft/index.js";
import type { MetaPut, MetaWrite } from "../../proto/schedulerraftpb.js";
import { ClusterMember, MemberSnapshotData, Membership } from "../../proto/schedulerraftpb.js";
import { CorruptMetadataError } from "../errors.js";
import { openSchedulerLevel } from "../core/meta-kv.js";

/**
 * Key layout of a member's one LevelDB (`<dataDir>/member`). The raft log, the hard state and the
 * applied state machine share it, so one batch persists a loop turn's entries, hard state,
 * applied writes and applied index together (group commit, no torn state), and one batch
 * installs a snapshot (a crash leaves the old state or the new one, never a mix).
 */
const K = {
  hardState: "raft/hard_state",
  /** Which member this data dir belongs to (id, name, peer address), written at its first start. */
  self: "raft/self",
  /** Index and term of the entry just before the first one kept (absent until the first compaction). */
  truncated: "raft/truncated",
  /** The latest snapshot (eraftpb.Snapshot whose data is a MemberSnapshotData). */
  snapshot: "raft/snapshot",
  log: "raft/log/",
  applied: "sm/applied",
  membership: "sm/membership",
  data: "sm/kv/",
} as const;

const LOG_END = `${K.log}\xff`;
const DATA_END = `${K.data}\xff`;

function logKey(index: bigint): string {
  return K.log + index.toString().padStart(20, "0");
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

function indexTerm(index: bigint, term: bigint): Buffer {
  return Buffer.concat([u64(index), u64(term)]);
}

/** When a member snapshots its applied state and truncates its log (etcd's two flags). */
export interface CompactionPolicy {
  /** Applied entries between two snapshots (etcd's --snapshot-count). */
  snapshotCount: number;
  /** Entries kept before a snapshot's index, so a follower slightly behind needs no snapshot. */
  catchupEntries: number;
}

export const DEFAULT_COMPACTION: CompactionPolicy = { snapshotCount: 10_000, catchupEntries: 1_000 };

export function checkCompactionPolicy(p: CompactionPolicy): void {
  if (!Number.isSafeInteger(p.snapshotCount) || p.snapshotCount < 1)
    throw new RangeError(`snapshot count ${p.snapshotCount} must be a positive integer`);
  if (!Number.isSafeInteger(p.catchupEntries) || p.catchupEntries < 0 || p.catchupEntries >= p.snapshotCount)
    throw new RangeError(
      `snapshot catch-up entries ${p.catchupEntries} must be at least 0 and below the snapshot count ${p.snapshotCount}`,
    );
}

/** What one loop turn persists: a Ready's snapshot, log and hard state, and the writes it applied. */
export interface TurnWrite {
  /** A snapshot from the leader: replaces the log, the applied metadata and the membership. */
  snapshot?: Snapshot;
  entries: Entry[];
  hardState?: HardState;
  applied: MetaWrite[];
  appliedIndex?: bigint;
  /** The membership after a conf change applied in this turn. */
  membership?: Membership;
  sync: boolean;
}

/**
 * A member's durable state. The log since the last truncation is also kept in memory (the raft
 * library reads it synchronously), and so is the latest snapshot (to send to a follower that is
 * too far behind): both are bounded by the compaction policy and the metadata's size, not by how
 * many entries were ever written.
 */
export class MemberStorage implements RaftLogStorage {
  private readonly mem = new MemoryStorage();
  private appliedIndex = 0n;
  private membershipValue: Membership | undefined;
  private selfValue: ClusterMember | undefined;

  private constructor(private readonly db: ClassicLevel<string, Buffer>) {}

  static async open(dataDir: string): Promise<MemberStorage> {
    const s = new MemberStorage(await openSchedulerLevel(dataDir, "member"));
    try {
      await s.load();
    } catch (err) {
      await s.db.close();
      throw err;
    }
    return s;
  }

  private async load(): Promise<void> {
    const hs = await this.db.get(K.hardState);
    const truncatedBuf = await this.db.get(K.truncated);
    const snapBuf = await this.db.get(K.snapshot);
    const membershipBuf = await this.db.get(K.membership);
    const selfBuf = await this.db.get(K.self);
    if (selfBuf) this.selfValue = decodeOrThrow(K.self, () => ClusterMember.decode(selfBuf));
    const snap = snapBuf ? decodeOrThrow(K.snapshot, () => SnapshotCodec.decode(snapBuf)) : undefined;
    if (membershipBuf) this.membershipValue = decodeOrThrow(K.membership, () => Membership.decode(membershipBuf));
    let truncated = { index: 0n, term: 0n };
    if (truncatedBuf) {
      if (truncatedBuf.length !== 16)
        throw new CorruptMetadataError(K.truncated, `${truncatedBuf.length} bytes, want 16`);
      truncated = { index: truncatedBuf.readBigUInt64BE(0), term: truncatedBuf.readBigUInt64BE(8) };
      const snapIndex = snap?.metadata?.index ?? 0n;
      if (snapIndex < truncated.index)
        throw new CorruptMetadataError(
          K.snapshot,
          `snapshot at ${snapIndex} is below the truncated log (${truncated.index})`,
        );
      // The log starts after the truncation point: give the memory copy that offset first.
      const offset = snapIndex === truncated.index ? snap! : placeholderSnapshot(truncated.index, truncated.term);
      this.mem.applySnapshot(offset);
    }
    const entries: Entry[] = [];
    for await (const [k, v] of this.db.iterator({ gt: logKey(truncated.index), lt: LOG_END })) {
      const e = decodeOrThrow(k, () => EntryCodec.decode(v));
      const expected = (entries.at(-1)?.index ?? truncated.index) + 1n;
      if (e.index !== expected)
        throw new CorruptMetadataError(k, `log entry ${e.index} where ${expected} was expected`);
      entries.push(e);
    }
    this.mem.append(entries);
    const snapMeta = snap?.metadata;
    if (snap && snapMeta && snapMeta.index > truncated.index) {
      if (snapMeta.index > this.mem.lastIndex() || this.mem.term(snapMeta.index) !== snapMeta.term)
        throw new CorruptMetadataError(K.snapshot, `snapshot at ${snapMeta.index}/${snapMeta.term} is not in the log`);
      this.mem.createSnapshot(snapMeta.index, snapMeta.confState, Buffer.from(snap.data));
    }
    if (this.membershipValue) this.mem.setConfState(confStateOf(this.membershipValue));
    if (hs) this.mem.setHardState(decodeOrThrow(K.hardState, () => HardStateCodec.decode(hs)));
    const applied = await this.db.get(K.applied);
    if (applied) this.appliedIndex = applied.readBigUInt64BE();
  }

  /** The index of the last entry whose writes are in the state machine. */
  get applied(): bigint {
    return this.appliedIndex;
  }

  /** The membership as of the applied index; undefined before a new member's first snapshot. */
  get membership(): Membership | undefined {
    return this.membershipValue;
  }

  /** The member this data dir belongs to; undefined before its first start finished. */
  get self(): ClusterMember | undefined {
    return this.selfValue;
  }

  async recordSelf(m: ClusterMember): Promise<void> {
    await this.db.put(K.self, Buffer.from(ClusterMember.encode(m).finish()), { sync: true });
    this.selfValue = m;
  }

  /** How many log entries this member keeps (in memory and on disk). */
  get logLength(): number {
    return Number(this.mem.lastIndex() - this.mem.firstIndex() + 1n);
  }

  /** Records the membership a new group starts with, unless one is already stored. */
  async bootstrapMembership(m: Membership): Promise<void> {
    if (this.membershipValue) return;
    await this.db.put(K.membership, Buffer.from(Membership.encode(m).finish()), { sync: true });
    this.membershipValue = m;
    this.mem.setConfState(confStateOf(m));
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
    let installed: Membership | undefined;
    if (turn.snapshot) installed = await this.addSnapshotInstall(batch, turn.snapshot);
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
    if (turn.membership) batch.put(K.membership, Buffer.from(Membership.encode(turn.membership).finish()));
    await batch.write({ sync: turn.sync || turn.snapshot !== undefined });
    if (turn.snapshot) {
      this.mem.applySnapshot(turn.snapshot);
      this.appliedIndex = turn.snapshot.metadata!.index;
      this.membershipValue = installed;
    }
    if (turn.entries.length > 0) this.mem.append(turn.entries);
    if (turn.hardState) this.mem.setHardState(turn.hardState);
    if (turn.appliedIndex !== undefined) this.appliedIndex = turn.appliedIndex;
    if (turn.membership) {
      this.membershipValue = turn.membership;
      this.mem.setConfState(confStateOf(turn.membership));
    }
  }

  /** Adds to `batch` what replaces this member's state with the snapshot's; returns its membership. */
  private async addSnapshotInstall(
    batch: ReturnType<ClassicLevel<string, Buffer>["batch"]>,
    snap: Snapshot,
  ): Promise<Membership> {
    const meta = snap.metadata;
    if (!meta || meta.index === 0n) throw new CorruptMetadataError("snapshot from the leader", "no index");
    const data = decodeOrThrow(`snapshot at ${meta.index}`, () => MemberSnapshotData.decode(snap.data));
    if (!data.membership || data.membership.members.length === 0)
      throw new CorruptMetadataError(`snapshot at ${meta.index}`, "no membership");
    for await (const k of this.db.keys({ gte: K.log, lt: LOG_END })) batch.del(k);
    for await (const k of this.db.keys({ gte: K.data, lt: DATA_END })) batch.del(k);
    for (const kv of data.kvs) batch.put(K.data + kv.key, Buffer.from(kv.value));
    batch.put(K.membership, Buffer.from(Membership.encode(data.membership).finish()));
    batch.put(K.snapshot, Buffer.from(SnapshotCodec.encode(snap).finish()));
    batch.put(K.truncated, indexTerm(meta.index, meta.term));
    batch.put(K.applied, u64(meta.index));
    return data.membership;
  }

  /**
   * Once `policy.snapshotCount` entries were applied since the last snapshot: snapshots the
   * applied metadata and membership at the applied index and truncates the log before it (but
   * for `catchupEntries`). The member calls it between loop turns, so nothing applies meanwhile.
   * `force` compacts now (before a member is added: it must start from a snapshot, since the
   * initial members are in no log entry). Entry 1 always goes, so a member with an empty log
   * always gets a snapshot. Returns the snapshot's index, or undefined when it was not time yet.
   */
  async maybeCompact(policy: CompactionPolicy, force = false): Promise<bigint | undefined> {
    const at = this.appliedIndex;
    const last = this.mem.snapshot().metadata?.index ?? 0n;
    if (at === 0n || !this.membershipValue || (!force && at - last < BigInt(policy.snapshotCount))) return undefined;
    const batch = this.db.batch();
    if (at > last) {
      const kvs: MetaPut[] = [];
      for await (const [k, v] of this.db.iterator({ gte: K.data, lt: DATA_END }))
        kvs.push({ key: k.slice(K.data.length), value: v });
      const data = Buffer.from(MemberSnapshotData.encode({ membership: this.membershipValue, kvs }).finish());
      const snap = this.mem.createSnapshot(at, confStateOf(this.membershipValue), data);
      batch.put(K.snapshot, Buffer.from(SnapshotCodec.encode(snap).finish()));
    }
    const catchup = at - BigInt(policy.catchupEntries);
    const truncateAt = catchup < 1n ? 1n : catchup;
    const first = this.mem.firstIndex();
    if (truncateAt >= first) {
      for (let i = first; i <= truncateAt; i++) batch.del(logKey(i));
      batch.put(K.truncated, indexTerm(truncateAt, this.mem.term(truncateAt)));
    }
    // Not synced: a crash that loses it leaves the previous snapshot and the longer log, still whole.
    await batch.write();
    if (truncateAt >= first) this.mem.compact(truncateAt);
    return at;
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

export function confStateOf(m: Membership): ConfState {
  return { nodes: m.members.map((x) => x.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) };
}

/** Stands for the truncated part of the log until the real snapshot (at a later index) is loaded. */
function placeholderSnapshot(index: bigint, term: bigint): Snapshot {
  return { data: Buffer.alloc(0), metadata: { index, term, confState: { nodes: [] } } };
}

function decodeOrThrow<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CorruptMetadataError(key, (err as Error).message);
  }
}
