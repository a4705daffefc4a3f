// A simulated cluster for the randomized Raft simulation: nodes with persisted MemoryStorage
// and a state machine, and an unreliable network (drop, delay, reorder, duplicate, partition).
// Crashes lose everything not persisted through a Ready. Safety is checked as things happen.
import type { Entry, Ready, Snapshot } from "../../../src/raft/testing.js";
import {
  ConfChange,
  ConfChangeType,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  Message,
  MessageType,
  InspectableRawNode as RawNode,
  SnapshotStatus,
  seededRandom,
} from "../../../src/raft/testing.js";
import { Checker, SafetyViolation, digest, entryKey } from "./checker.js";

export interface SimOptions {
  nodes: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Encode and decode every message, as a real transport would. */
  codec: boolean;
  electionTick: number;
  heartbeatTick: number;
  maxInflight: number;
  maxSizePerMsg: number;
}

export class SimNode {
  readonly storage = new MemoryStorage();
  rn: RawNode | undefined;
  destroyed = false;
  /** The state machine: a digest of the applied history, persisted with each apply. */
  sm = "root";
  appliedIndex = 0n;
  /** Applied an entry proposed after healing (the liveness check waits for it). */
  appliedFinal = false;
  /** chain[i - chainStart]: digest of the persisted log prefix ending at index i. */
  chainStart = 0n;
  chain: string[] = ["root"];
  /** ReadIndex requests in flight: ctx -> the highest index applied anywhere when it was issued. */
  readonly pendingReads = new Map<string, bigint>();
  /** Readies persisted and sent but not yet applied and advanced. */
  unadvanced: Ready[] = [];

  constructor(readonly id: bigint) {}

  get alive(): boolean {
    return this.rn !== undefined && !this.destroyed;
  }
}

export class SimCluster {
  readonly nodes = new Map<bigint, SimNode>();
  readonly checker = new Checker();
  queue: Message[] = [];
  /** node -> partition group; messages between groups are dropped. */
  groups: Map<bigint, number> | undefined;
  dropRate = 0;
  dupRate = 0;
  crashInReadyRate = 0;
  deferApplyRate = 0;
  nextId: bigint;
  private readonly initialPeers: bigint[];
  private readCounter = 0;
  /** Set by a debugging script to print every event. */
  trace: ((line: string) => void) | undefined = undefined;

  constructor(
    readonly rand: () => number,
    readonly opts: SimOptions,
    private readonly seed: number,
  ) {
    this.initialPeers = Array.from({ length: opts.nodes }, (_, i) => BigInt(i + 1));
    this.nextId = BigInt(opts.nodes + 1);
    for (const id of this.initialPeers) {
      this.nodes.set(id, this.bootstrap(id));
      this.start(id);
    }
  }

  /**
   * TinyKV-style bootstrap: the initial members start from a snapshot at index 5 that holds the
   * membership. A node added later starts empty and is caught up by a snapshot, which is how it
   * learns the membership (it could not rebuild it by replaying conf changes from index 1).
   */
  private bootstrap(id: bigint): SimNode {
    const node = new SimNode(id);
    const index = 5n;
    node.storage.applySnapshot({
      data: Buffer.from(JSON.stringify({ sm: node.sm })),
      metadata: { index, term: index, confState: { nodes: this.initialPeers } },
    });
    node.storage.setHardState({ term: index, vote: 0n, commit: index });
    node.appliedIndex = index;
    node.chainStart = index;
    node.chain = ["bootstrap"];
    this.checker.registerPrefix(index, index, "bootstrap", id);
    return node;
  }

  pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rand() * xs.length)];
  }

  alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  private start(id: bigint): void {
    const node = this.nodes.get(id)!;
    node.rn = new RawNode({
      id,
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      storage: node.storage,
      applied: node.appliedIndex,
      preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum,
      maxInflightMsgs: this.opts.maxInflight,
      maxSizePerMsg: this.opts.maxSizePerMsg,
      random: seededRandom((this.seed * 7919 + Number(id) * 104729) >>> 0),
    });
  }

  crash(node: SimNode): void {
    this.trace?.(`CRASH ${node.id}`);
    node.rn = undefined;
    node.unadvanced = [];
    node.pendingReads.clear();
  }

  restart(node: SimNode): void {
    if (node.destroyed || node.rn) return;
    this.trace?.(
      `RESTART ${node.id} hs=${JSON.stringify(node.storage.initialState(), (_k, v) => (typeof v === "bigint" ? Number(v) : v))}`,
    );
    // A snapshot persisted but not yet applied before the crash is applied now.
    const s = node.storage;
    const unavailable = s.snapshotUnavailable;
    s.snapshotUnavailable = false;
    const snap = s.snapshot();
    s.snapshotUnavailable = unavailable;
    if (snap.metadata!.index > node.appliedIndex) this.restoreStateMachine(node, snap);
    this.start(node.id);
  }

  // ---- driving nodes -----------------------------------------------------------------------

  tick(node: SimNode): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    node.rn!.tick();
    this.processReady(node);
  }

  propose(node: SimNode, data: string): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    try {
      node.rn!.propose(Buffer.from(data));
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
    }
    this.processReady(node);
  }

  proposeConfChange(node: SimNode, changeType: ConfChangeType, nodeId: bigint): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    try {
      node.rn!.proposeConfChange(ConfChange.create({ changeType, nodeId }));
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
    }
    this.processReady(node);
  }

  transferLeader(node: SimNode, to: bigint): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    node.rn!.transferLeader(to);
    this.processReady(node);
  }

  readIndex(node: SimNode): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    const ctx = `r${this.readCounter++}`;
    node.pendingReads.set(ctx, this.checker.maxApplied);
    node.rn!.readIndex(Buffer.from(ctx));
    this.processReady(node);
  }

  /** The application snapshots its state machine and compacts part of the log. */
  compact(node: SimNode): void {
    if (!node.alive) return; // destroyed by a conf change earlier in the same round
    const s = node.storage;
    // Sometimes the snapshot is "still being generated": the leader must retry later.
    s.snapshotUnavailable = this.rand() < 0.2;
    if (node.appliedIndex > s.lastIndex()) return;
    s.snapshotUnavailable = false;
    if (node.appliedIndex > s.snapshot().metadata!.index) {
      s.createSnapshot(node.appliedIndex, undefined, Buffer.from(JSON.stringify({ sm: node.sm })));
    }
    s.snapshotUnavailable = this.rand() < 0.2;
    const compacted = s.firstIndex() - 1n;
    if (node.appliedIndex <= compacted) return;
    const span = Number(node.appliedIndex - compacted);
    s.compact(compacted + 1n + BigInt(Math.floor(this.rand() * span)));
  }

  // ---- network -----------------------------------------------------------------------------

  private send(m: Message): void {
    if (this.opts.codec) m = Message.decode(Message.encode(m).finish());
    this.queue.push(m);
  }

  /** Delivers (or loses) one queued message; random choice = delay and reordering. */
  deliverOne(inOrder = false): void {
    if (this.queue.length === 0) return;
    const i = inOrder ? 0 : Math.floor(this.rand() * this.queue.length);
    const m = this.queue[i]!;
    const duplicate = !inOrder && this.rand() < this.dupRate;
    if (!duplicate) this.queue.splice(i, 1);
    const to = this.nodes.get(m.to);
    const cut = this.groups !== undefined && this.groups.get(m.from) !== this.groups.get(m.to);
    const lost = !to?.alive || cut || (!inOrder && this.rand() < this.dropRate);
    if (m.msgType === MessageType.MsgSnapshot) this.reportSnapshot(m, lost);
    this.trace?.(
      `${lost ? "LOST " : ""}${MessageType[m.msgType]} ${m.from}->${m.to} t${m.term} i${m.index} lt${m.logTerm} c${m.commit} n${m.entries.length}${m.reject ? " reject" : ""}${m.snapshot ? " snap@" + m.snapshot.metadata?.index : ""}`,
    );
    if (lost || !to!.alive) return; // (reporting the snapshot may have destroyed it)
    to!.rn!.step(m);
    this.processReady(to!);
  }

  /** The transport tells the sender whether a snapshot got through (as a raftstore does). */
  private reportSnapshot(m: Message, lost: boolean): void {
    const from = this.nodes.get(m.from);
    if (!from?.alive) return;
    from.rn!.reportSnapshot(m.to, lost ? SnapshotStatus.Failure : SnapshotStatus.Finish);
    if (lost) from.rn!.reportUnreachable(m.to);
    this.processReady(from);
  }

  // ---- the application's Ready loop ----------------------------------------------------------

  /**
   * The application's Ready loop: persist (snapshot, entries, hard state), send, then apply and
   * advance. Applying may be deferred past later events and Readies (as a raftstore with an
   * asynchronous apply worker does); deferred Readies are applied and advanced in order.
   */
  processReady(node: SimNode): void {
    if (node.unadvanced.length > 0 && this.rand() >= this.deferApplyRate) this.applyAndAdvance(node);
    while (node.alive && node.rn!.hasReady()) {
      const rn = node.rn!;
      const rd = rn.ready();
      if (this.rand() < this.crashInReadyRate) return this.crash(node); // nothing persisted
      if (rd.snapshot) this.persistSnapshot(node, rd.snapshot);
      this.persistEntries(node, rd.entries);
      if (rd.hardState) node.storage.setHardState(rd.hardState);
      if (this.rand() < this.crashInReadyRate) return this.crash(node); // persisted, not sent
      for (const m of rd.messages) this.send(m);
      node.unadvanced.push(rd);
      if (rd.softState || rd.hardState)
        this.trace?.(
          `  node ${node.id}: ${rd.softState ? "state " + rd.softState.raftState + " lead " + rd.softState.lead : ""} ${rd.hardState ? "hs t" + rd.hardState.term + " v" + rd.hardState.vote + " c" + rd.hardState.commit : ""} members ${rn.raft.nodes()}`,
        );
      this.checker.observeLeader(rn.raft);
      if (this.rand() >= this.deferApplyRate) this.applyAndAdvance(node);
    }
  }

  /** Applies the Readies taken so far, in order, and acknowledges them. */
  applyAndAdvance(node: SimNode): void {
    const rds = node.unadvanced;
    node.unadvanced = [];
    for (const rd of rds) {
      if (rd.snapshot) this.restoreStateMachine(node, rd.snapshot);
      for (const e of rd.committedEntries) {
        this.apply(node, e);
        if (!node.alive) return; // it applied its own removal and was destroyed
      }
      this.checkReads(node, rd);
      node.rn!.advance(rd);
    }
  }

  private persistEntries(node: SimNode, ents: Entry[]): void {
    if (ents.length === 0) return;
    node.storage.append(ents);
    const first = ents[0]!.index;
    const keep = Number(first - node.chainStart);
    if (keep < 1 || keep > node.chain.length) {
      throw new SafetyViolation(
        `node ${node.id} appended at ${first} outside its log [${node.chainStart}, +${node.chain.length})`,
      );
    }
    node.chain.length = keep;
    for (const e of ents) {
      const prefix = digest(node.chain[node.chain.length - 1]!, entryKey(e));
      node.chain.push(prefix);
      this.checker.registerPrefix(e.index, e.term, prefix, node.id);
    }
  }

  private persistSnapshot(node: SimNode, snap: Snapshot): void {
    const { index, term } = snap.metadata!;
    node.storage.applySnapshot(snap);
    const base = this.checker.prefixOf(index, term);
    if (base === undefined) throw new SafetyViolation(`snapshot at ${index}/${term} matches no persisted entry`);
    node.chainStart = index;
    node.chain = [base];
  }

  private restoreStateMachine(node: SimNode, snap: Snapshot): void {
    const index = snap.metadata!.index;
    if (index <= node.appliedIndex) {
      throw new SafetyViolation(`node ${node.id} got snapshot ${index} at or below applied ${node.appliedIndex}`);
    }
    const { sm } = JSON.parse(snap.data.toString()) as { sm: string };
    this.checker.checkSnapshotState(node.id, index, sm);
    node.sm = sm;
    node.appliedIndex = index;
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.appliedIndex + 1n) {
      throw new SafetyViolation(`node ${node.id} applied index ${e.index} after ${node.appliedIndex}`);
    }
    node.sm = digest(node.sm, entryKey(e));
    node.appliedIndex = e.index;
    this.checker.registerApply(node.id, e.index, e.term, node.sm);
    if (e.data.length > 6 && e.data.toString().startsWith("final-")) node.appliedFinal = true;
    if (e.entryType !== EntryType.EntryConfChange) return;
    const cc = ConfChange.decode(e.data);
    this.trace?.(`  node ${node.id} applies conf change ${ConfChangeType[cc.changeType]} ${cc.nodeId} at ${e.index}`);
    node.storage.setConfState(node.rn!.applyConfChange(cc));
    this.onConfChangeCommitted(cc);
  }

  /** Models the store: a removed node is destroyed; an added one is created empty. */
  private onConfChangeCommitted(cc: ConfChange): void {
    const existing = this.nodes.get(cc.nodeId);
    if (cc.changeType === ConfChangeType.RemoveNode && existing && !existing.destroyed) {
      existing.destroyed = true;
      existing.rn = undefined;
      existing.unadvanced = [];
    } else if (cc.changeType === ConfChangeType.AddNode && !existing) {
      this.nodes.set(cc.nodeId, new SimNode(cc.nodeId));
      this.start(cc.nodeId);
    }
  }

  private checkReads(node: SimNode, rd: Ready): void {
    for (const rs of rd.readStates) {
      const ctx = rs.requestCtx.toString();
      const lowerBound = node.pendingReads.get(ctx);
      if (lowerBound === undefined) continue; // issued before a crash
      node.pendingReads.delete(ctx);
      if (rs.index < lowerBound) {
        throw new SafetyViolation(
          `read index ${rs.index} for ${ctx} on ${node.id} is below ${lowerBound}, applied before it was issued`,
        );
      }
    }
  }

  /** The members as the most advanced node has applied them. */
  members(): bigint[] {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.destroyed && n.rn && (!best || n.appliedIndex > best.appliedIndex)) best = n;
    }
    return best ? best.rn!.raft.nodes() : [];
  }
}
