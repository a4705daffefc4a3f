import type { Entry } from "../../raft/eraftpb.js";
import { EntryType } from "../../raft/eraftpb.js";
import type { Region } from "../../proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { CF_WRITE, parseCf } from "../engine/index.js";
import type { RaftstoreObserver, TurnTimeline } from "../raftstore/observer.js";
import { checkKeysInRegion, checkRegionEpoch } from "../raftstore/epoch.js";
import type { Logger } from "../../util/logger.js";
import { asBuffer } from "../raftstore/peer-storage.js";

/** A put to CF write (a commit or rollback record), as one applied entry wrote it. */
export interface WriteRecordPut {
  /** EncodeBytes(userKey) | commit_ts, the stored key. */
  key: Buffer;
  /** The Write record (kind | start_ts). */
  value: Buffer;
}

/** One entry a region's replica on this store applied and made durable. */
export interface AppliedChange {
  index: bigint;
  /** The region as it stood right after this entry applied (a split changes it). */
  region: Region;
  /** The commit records the entry wrote; empty for entries that wrote none or were refused at apply, or that no listener needs them for. */
  writes: WriteRecordPut[];
  /** The raw change record the entry wrote (raftstore/raw-changes.ts), if it changed raw keys or split. */
  rawRecord: Buffer | undefined;
  /** The entry's data, where the record's put values lie (rawChangeRecordNeedsEntry). */
  entryData: Buffer;
}

/** Commands apply takes besides Put; none of them writes CF write (Percolator only puts there). */
const TXN_SAFE_CMDS = new Set<CmdType>([CmdType.Delete, CmdType.DeleteRange, CmdType.ConditionalWrite]);

export type ChangeListener = (changes: AppliedChange[]) => void;

/** What a listener reads of a change: a raw feed needs only the raw record, not the commit records. */
export interface ListenerNeeds {
  commitRecords: boolean;
}

/** What the hub needs of the store: the region a peer holds right now. */
export interface RegionLookup {
  regionOf(regionId: bigint): Region | undefined;
}

/**
 * Taps the raftstore's apply for the change feed. The observer's `applied` hook fires while the
 * kv batch is still being built, so changes wait here until the turn reports that batch written
 * (TurnTimeline.applied): a watcher is never told of a write a crash could still undo, and a
 * kv snapshot taken after a change was told holds it. Only regions somebody watches are decoded.
 */
export class ChangeHub {
  private readonly listeners = new Map<bigint, Map<ChangeListener, ListenerNeeds>>();
  /**
   * Entries applied in the current turn, not yet durable, of every region: a watcher that
   * subscribes while the turn's kv write is in flight must still get them (its kv snapshot may
   * not hold them). Decoded at flush, and only for watched regions.
   */
  private pending = new Map<bigint, Array<{ entry: Entry; region: Region; rawRecord: Buffer | undefined }>>();
  private regions: RegionLookup | undefined;

  constructor(private readonly log: Logger) {}

  /** The store to ask for regions; set once the store exists (it needs the observer first). */
  attach(regions: RegionLookup): void {
    this.regions = regions;
  }

  /**
   * Listens to the region's durable applied changes, in log order; returns the unsubscribe. A
   * region's entries are decoded for commit records only while a listener needs them (`writes`
   * is empty otherwise).
   */
  subscribe(regionId: bigint, listener: ChangeListener, needs: ListenerNeeds = { commitRecords: true }): () => void {
    const map = this.listeners.get(regionId) ?? new Map<ChangeListener, ListenerNeeds>();
    this.listeners.set(regionId, map);
    map.set(listener, needs);
    return () => {
      map.delete(listener);
      if (map.size === 0 && this.listeners.get(regionId) === map) this.listeners.delete(regionId);
    };
  }

  /** `inner` with the hub's taps added: what the store is given as its observer. */
  observer(inner: RaftstoreObserver): RaftstoreObserver {
    const hub = this;
    return {
      write: (regionId) => inner.write(regionId),
      read: (regionId) => inner.read(regionId),
      turn: () => hub.turn(inner.turn()),
      applied(storeId, peerId, regionId, entry, rawRecord) {
        inner.applied?.(storeId, peerId, regionId, entry, rawRecord);
        hub.onApplied(regionId, entry, rawRecord);
      },
      snapshotSent: (bytes, complete) => inner.snapshotSent(bytes, complete),
      snapshotReceived: (bytes, accepted) => inner.snapshotReceived(bytes, accepted),
      logCompacted: (entries) => inner.logCompacted(entries),
    };
  }

  private turn(inner: TurnTimeline): TurnTimeline {
    // A turn whose kv write failed never reached applied(): its changes are not durable, drop them.
    this.pending = new Map();
    return {
      persistStarted: () => inner.persistStarted(),
      persisted: (readies, entries, synced) => inner.persisted(readies, entries, synced),
      applyStarted: () => inner.applyStarted(),
      applied: (entries) => {
        inner.applied(entries);
        this.flush();
      },
      done: () => inner.done(),
    };
  }

  private onApplied(regionId: bigint, entry: Entry, rawRecord: Buffer | undefined): void {
    // Region objects are replaced, never mutated, when a split or conf change applies: this is
    // the region as it stands right after this entry.
    const region = this.regions?.regionOf(regionId);
    if (!region) return;
    const list = this.pending.get(regionId);
    if (list) list.push({ entry, region, rawRecord });
    else this.pending.set(regionId, [{ entry, region, rawRecord }]);
  }

  /**
   * The CF write puts an entry made, judged as apply judged it: a data entry changes no region,
   * so the region after it is the one apply checked its epoch and keys against.
   */
  private commitRecords(region: Region, entry: Entry): WriteRecordPut[] {
    if (entry.entryType !== EntryType.EntryNormal || entry.data.length === 0) return [];
    let req: RaftCmdRequest;
    try {
      req = RaftCmdRequest.decode(entry.data);
    } catch (err) {
      // Apply decoded this very entry; failing here means a bug, not a lost change: say so loudly.
      this.log.error({ err, region_id: String(region.id), index: String(entry.index) }, "change feed: bad entry");
      return [];
    }
    if (req.adminRequest || checkRegionEpoch(req, region) || checkKeysInRegion(req, region)) return [];
    const out: WriteRecordPut[] = [];
    for (const r of req.requests) {
      if (r.cmdType === CmdType.Put) {
        if (parseCf(r.put!.cf) === CF_WRITE)
          out.push({ key: Buffer.from(r.put!.key), value: Buffer.from(r.put!.value) });
      } else if (!TXN_SAFE_CMDS.has(r.cmdType)) break; // apply stops at the first command it refuses
    }
    return out;
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = new Map();
    for (const [regionId, applied] of pending) {
      const listeners = this.listeners.get(regionId);
      if (!listeners) continue;
      const decode = [...listeners.values()].some((n) => n.commitRecords);
      const changes = applied.map(({ entry, region, rawRecord }) => ({
        index: entry.index,
        region,
        writes: decode ? this.commitRecords(region, entry) : [],
        rawRecord,
        entryData: asBuffer(entry.data),
      }));
      for (const listener of [...listeners.keys()]) listener(changes);
    }
  }
}
