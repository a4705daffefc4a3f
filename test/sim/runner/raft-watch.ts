/**
 * The simulation's eyes on raft: every entry each replica applies (through the raftstore
 * observer's apply callback) and every peer that becomes leader (through the scheduler hooks a
 * new leader calls at once, plus a sample of all peers a few times per raft tick) go to the
 * RaftInvariantChecker. A violation becomes a failure at once, so the run stops next to it.
 */
import type { Entry } from "../../../src/raft/eraftpb.js";
import { ConfChange, ConfChangeType, EntryType } from "../../../src/raft/eraftpb.js";
import type { Peer, RaftstoreObserver, StoreHooks } from "../../../src/kv/raftstore/index.js";
import { NO_OBSERVER } from "../../../src/kv/raftstore/index.js";
import { AdminCmdType, CmdType, RaftCmdRequest } from "../../../src/proto/raft_cmdpb.js";
import type { TestCluster } from "../../harness/cluster.js";
import type { RaftViolation } from "../checkers/index.js";
import { digestBytes, RaftInvariantChecker } from "../checkers/index.js";

export class RaftWatch {
  readonly checker = new RaftInvariantChecker();
  /** Conf-change entries applied (one per region and index, however many replicas applied it). */
  confChanges = 0;

  constructor(
    private readonly now: () => number,
    private readonly fail: (message: string) => void,
    /** The cluster's state, appended to a failure. */
    private readonly dump: () => string,
  ) {}

  /** The observer a store gets: the default one's timelines, plus every entry applied. */
  observer(): RaftstoreObserver {
    return {
      ...NO_OBSERVER,
      applied: (storeId, peerId, regionId, entry, rawRecord) =>
        this.applied(storeId, peerId, regionId, entry, rawRecord),
    };
  }

  /** `inner` with its region heartbeat hook also telling who leads (a new leader calls it at once). */
  hooks(inner: StoreHooks): StoreHooks {
    return {
      ...inner,
      onRegionHeartbeat: (peer) => {
        this.sawLeader(peer);
        inner.onRegionHeartbeat?.(peer);
      },
    };
  }

  /** Every running peer that believes it leads (a leader whose heartbeat hook had nothing new). */
  sample(cluster: TestCluster): void {
    for (const id of cluster.storeIds) for (const peer of cluster.store(id)?.peers.values() ?? []) this.sawLeader(peer);
  }

  private sawLeader(peer: Peer): void {
    if (!peer.isLeader()) return;
    this.report(
      this.checker.observe({
        type: "leader",
        region: Number(peer.regionId),
        term: Number(peer.term),
        store: Number(peer.storeId),
        peer: Number(peer.meta.id),
        at: this.now(),
      }),
    );
  }

  private applied(
    storeId: bigint,
    peerId: bigint,
    regionId: bigint,
    entry: Entry,
    rawRecord: Buffer | undefined,
  ): void {
    const before = this.checker.distinctApplies;
    const violation = this.checker.observe({
      type: "apply",
      region: Number(regionId),
      index: Number(entry.index),
      term: Number(entry.term),
      store: Number(storeId),
      peer: Number(peerId),
      // The type is in the seed: an empty normal entry and an empty conf change differ. The raw
      // change record is what the entry did (a CAS swapped or not, the keys a range held): every
      // replica must have done the same.
      digest: digestBytes(rawRecord ? Buffer.concat([entry.data, rawRecord]) : entry.data, entry.entryType),
      at: this.now(),
    });
    if (entry.entryType === EntryType.EntryConfChange && this.checker.distinctApplies > before) this.confChanges++;
    this.report(
      violation,
      violation &&
        `; the second entry: ${describeEntry(entry)}${rawRecord ? ` (its raw change record: ${rawRecord.toString("hex")})` : ""}`,
    );
  }

  private report(violation: RaftViolation | undefined, detail = ""): void {
    if (violation) this.fail(`raft: ${violation.message}${detail}\n${this.dump()}`);
  }
}

/** One raft entry in a line: its command(s), or the conf change, decoded. */
export function describeEntry(entry: Entry): string {
  const at = `entry ${entry.index} term ${entry.term}`;
  try {
    if (entry.entryType === EntryType.EntryConfChange) {
      const cc = ConfChange.decode(entry.data);
      return `${at}: conf change ${ConfChangeType[cc.changeType]} peer ${cc.nodeId}`;
    }
    if (entry.data.length === 0) return `${at}: empty (a new leader's first entry)`;
    const req = RaftCmdRequest.decode(entry.data);
    if (req.adminRequest) return `${at}: admin ${AdminCmdType[req.adminRequest.cmdType]}`;
    const cmds = req.requests.map((r) => {
      const key = r.put?.key ?? r.delete?.key;
      return `${CmdType[r.cmdType]} ${r.put?.cf ?? r.delete?.cf ?? ""} ${JSON.stringify(key?.toString("latin1") ?? "")}`;
    });
    return `${at}: ${cmds.join(", ")}`;
  } catch (err) {
    // A report is being written: an entry that does not decode is described as such, not thrown.
    return `${at}: ${entry.data.length} bytes that do not decode (${String(err)})`;
  }
}
