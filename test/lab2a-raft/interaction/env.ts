// The interaction environment: a few RawNodes on MemoryStorage and a network the script drives
// by hand. Nothing happens unless a command says so: `deliver-msgs` hands queued messages to
// their nodes, `process-ready` persists, applies and sends what a node has ready, and
// `stabilize` repeats both until the cluster is quiet. Every Ready, message and (at log-level
// info) every line of the nodes' trace goes to the command's output.
import type { Message, RaftConfig } from "../../../src/raft/testing.js";
import {
  ConfChange,
  ConfChangeType,
  EntryType,
  MemoryStorage,
  InspectableRawNode as RawNode,
  SnapshotStatus,
} from "../../../src/raft/testing.js";
import type { CmdArg, TestCase } from "./datadriven.js";
import { describeEntry, describeMessage, describeReady, stateName } from "./describe.js";

interface Node {
  id: bigint;
  rn: RawNode;
  storage: MemoryStorage;
}

export class ScriptError extends Error {
  constructor(c: TestCase, what: string) {
    super(`line ${c.line} (${c.input}): ${what}`);
    this.name = "ScriptError";
  }
}

export class InteractionEnv {
  private readonly nodes = new Map<bigint, Node>();
  /** Messages sent and not yet delivered, in the order they were sent. */
  private queue: Message[] = [];
  private readonly isolated = new Set<bigint>();
  private out: string[] = [];
  private readonly discard: string[] = [];
  private indent = "";
  private traceOn = true;

  /** Runs one command and returns what it printed ("ok" if nothing). */
  handle(c: TestCase): string {
    this.out = [];
    this.indent = "";
    const handler = this.commands[c.cmd];
    if (!handler) throw new ScriptError(c, `unknown command ${c.cmd}`);
    handler(c);
    return this.out.length === 0 ? "ok" : this.out.join("\n");
  }

  private readonly commands: Record<string, (c: TestCase) => void> = {
    "add-nodes": (c) => this.addNodes(c),
    campaign: (c) => this.node(c, 0).rn.campaign(),
    propose: (c) => {
      const [n, data] = [this.node(c, 0), Buffer.from(word(c, 1))];
      this.guard(() => n.rn.propose(data));
    },
    "read-index": (c) => {
      const [n, ctx] = [this.node(c, 0), Buffer.from(word(c, 1))];
      this.guard(() => n.rn.readIndex(ctx));
    },
    "propose-conf-change": (c) => this.proposeConfChange(c),
    "transfer-leadership": (c) => this.nodeById(c, intArg(c, "from")).rn.transferLeader(intArg(c, "to")),
    tick: (c) => this.tick(this.node(c, 0), Number(word(c, 1, "1"))),
    "tick-election": (c) => {
      const n = this.node(c, 0);
      this.tick(n, n.rn.raft.randomizedElectionTimeout);
    },
    "tick-heartbeat": (c) => {
      const n = this.node(c, 0);
      this.tick(n, n.rn.raft.heartbeatTimeout);
    },
    "process-ready": (c) => this.forEach(this.targets(c), "handling Ready", (n) => this.processReady(n)),
    "deliver-msgs": (c) => this.forEach(this.targets(c), "receiving messages", (n) => this.deliverTo(n)),
    stabilize: (c) => this.quietly(c, () => this.stabilize(this.targets(c))),
    "raft-state": () => this.raftState(),
    status: (c) => this.status(this.node(c, 0)),
    "raft-log": (c) => this.raftLog(this.node(c, 0)),
    isolate: (c) => this.isolated.add(this.node(c, 0).id),
    heal: () => this.isolated.clear(),
    compact: (c) => this.compact(this.node(c, 0), BigInt(word(c, 1))),
    "report-unreachable": (c) => this.node(c, 0).rn.reportUnreachable(BigInt(word(c, 1))),
    "report-snapshot": (c) => {
      const status = word(c, 2) === "failed" ? SnapshotStatus.Failure : SnapshotStatus.Finish;
      this.node(c, 0).rn.reportSnapshot(BigInt(word(c, 1)), status);
    },
    "log-level": (c) => {
      this.traceOn = word(c, 0) !== "none";
    },
  };

  private write(line: string): void {
    if (this.out === this.discard) return;
    // An empty line would end the expected output in the script.
    this.out.push(this.indent + (line === "" ? "." : line));
  }

  /** With the bare word `quiet`, the command runs but prints nothing (setup steps). */
  private quietly(c: TestCase, f: () => void): void {
    if (!c.args.some((a) => a.key === "quiet" && a.vals.length === 0)) return f();
    const out = this.out;
    this.out = this.discard;
    try {
      f();
    } finally {
      this.out = out;
    }
  }

  private guard(f: () => unknown): void {
    try {
      f();
    } catch (e) {
      this.write(`error: ${(e as Error).message}`);
    }
  }

  // ---- commands ------------------------------------------------------------------------

  /**
   * add-nodes <n> [voters=(1,2,3)] [index=<i>] [prevote=true] [checkquorum=true]
   * [step-down-on-removal=false]: with voters, each new node starts from a snapshot at index
   * (default 1, term 1) naming them; without, it starts empty and waits for a leader's snapshot.
   */
  private addNodes(c: TestCase): void {
    const count = Number(word(c, 0));
    const voters = arg(c, "voters")?.vals.map(BigInt);
    const index = BigInt(arg(c, "index")?.vals[0] ?? "1");
    for (let i = 0; i < count; i++) {
      const id = BigInt(this.nodes.size + 1);
      const storage = new MemoryStorage();
      if (voters) {
        storage.applySnapshot({ data: Buffer.alloc(0), metadata: { index, term: 1n, confState: { nodes: voters } } });
      }
      const config: RaftConfig = {
        id,
        electionTick: 3,
        heartbeatTick: 1,
        storage,
        preVote: flag(c, "prevote"),
        checkQuorum: flag(c, "checkquorum"),
        stepDownOnRemoval: arg(c, "step-down-on-removal")?.vals[0] !== "false",
        logger: { info: (line) => this.trace(line) },
      };
      this.nodes.set(id, { id, rn: new RawNode(config), storage });
    }
  }

  private trace(line: string): void {
    if (this.traceOn) this.write(`INFO ${line}`);
  }

  /** propose-conf-change <id> add=<node> | remove=<node> */
  private proposeConfChange(c: TestCase): void {
    const add = arg(c, "add");
    const remove = arg(c, "remove");
    const target = add ?? remove;
    if (!target?.vals[0]) throw new ScriptError(c, "needs add=<node> or remove=<node>");
    const cc = ConfChange.create({
      changeType: add ? ConfChangeType.AddNode : ConfChangeType.RemoveNode,
      nodeId: BigInt(target.vals[0]),
    });
    const n = this.node(c, 0);
    this.guard(() => n.rn.proposeConfChange(cc));
  }

  private tick(n: Node, times: number): void {
    for (let i = 0; i < times; i++) n.rn.tick();
  }

  /** The application's side of a Ready, in RawNode's order: persist, send, apply, advance. */
  private processReady(n: Node): void {
    if (!n.rn.hasReady()) return;
    const rd = n.rn.ready();
    for (const line of describeReady(rd, (m) => (this.partitioned(m) ? " DROPPED (partition)" : ""))) this.write(line);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    n.storage.append(rd.entries);
    // A partition loses what crosses it when it is sent; what was already on its way still arrives.
    this.queue.push(...rd.messages.filter((m) => !this.partitioned(m)));
    for (const e of rd.committedEntries) {
      if (e.entryType !== EntryType.EntryConfChange) continue;
      n.storage.setConfState(n.rn.applyConfChange(ConfChange.decode(e.data)));
    }
    n.rn.advance(rd);
  }

  private deliverTo(n: Node): void {
    const mine = this.queue.filter((m) => m.to === n.id);
    this.queue = this.queue.filter((m) => m.to !== n.id);
    for (const m of mine) {
      if (this.partitioned(m)) {
        this.write(`${describeMessage(m)} DROPPED (partition)`);
        continue;
      }
      this.write(describeMessage(m));
      this.indent += "  ";
      this.guard(() => n.rn.step(m));
      this.indent = this.indent.slice(2);
    }
  }

  private partitioned(m: Message): boolean {
    return this.isolated.has(m.from) !== this.isolated.has(m.to);
  }

  private stabilize(targets: Node[]): void {
    for (let round = 0; round < 1000; round++) {
      const ready = targets.filter((n) => n.rn.hasReady());
      const receiving = targets.filter((n) => this.queue.some((m) => m.to === n.id));
      if (ready.length === 0 && receiving.length === 0) return;
      this.forEach(ready, "handling Ready", (n) => this.processReady(n), true);
      this.forEach(receiving, "receiving messages", (n) => this.deliverTo(n), true);
    }
    this.write("error: not stable after 1000 rounds");
  }

  /** Runs f for each node, under a "> id what" header when there are several (or always). */
  private forEach(nodes: Node[], what: string, f: (n: Node) => void, headers = nodes.length > 1): void {
    for (const n of nodes) {
      if (!headers) {
        f(n);
        continue;
      }
      this.write(`> ${n.id} ${what}`);
      this.indent += "  ";
      f(n);
      this.indent = this.indent.slice(2);
    }
  }

  private raftState(): void {
    for (const n of this.nodes.values()) {
      const r = n.rn.raft;
      const role = r.prs.has(n.id) ? "Voter" : "Non-Voter";
      const isolated = this.isolated.has(n.id) ? " (isolated)" : "";
      this.write(`${n.id}: ${stateName(r.state)} (${role}) Term:${r.term} Lead:${r.lead}${isolated}`);
    }
  }

  private status(n: Node): void {
    const r = n.rn.raft;
    const st = n.rn.basicStatus();
    this.write(
      `${stateName(st.softState.raftState)} Term:${st.hardState.term} Commit:${st.hardState.commit} Applied:${st.applied}`,
    );
    if (n.rn.isLeader()) this.write("Progress:");
    for (const [id, pr] of n.rn.isLeader() ? [...r.prs].sort(([a], [b]) => (a < b ? -1 : 1)) : []) {
      let line = `${id}: ${pr.state} match=${pr.match} next=${pr.next}`;
      if (pr.pendingSnapshot !== 0n) line += ` pendingSnapshot=${pr.pendingSnapshot}`;
      if (pr.inflights.count > 0) line += ` inflight=${pr.inflights.count}`;
      if (pr.isPaused()) line += " paused";
      this.write(line);
    }
  }

  private raftLog(n: Node): void {
    const s = n.storage;
    if (s.lastIndex() < s.firstIndex()) {
      this.write(`log is empty: first index=${s.firstIndex()}, last index=${s.lastIndex()}`);
      return;
    }
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1n)) this.write(describeEntry(e));
  }

  /** Snapshots the node's storage at index and drops the log up to it, so laggards need the snapshot. */
  private compact(n: Node, index: bigint): void {
    n.storage.createSnapshot(index, undefined, Buffer.from(`snapshot of ${n.id} at ${index}`));
    n.storage.compact(index);
  }

  // ---- arguments -------------------------------------------------------------------------

  private node(c: TestCase, pos: number): Node {
    return this.nodeById(c, BigInt(word(c, pos)));
  }

  private nodeById(c: TestCase, id: bigint): Node {
    const n = this.nodes.get(id);
    if (!n) throw new ScriptError(c, `no node ${id}`);
    return n;
  }

  /** The nodes named by bare numbers, or all of them. */
  private targets(c: TestCase): Node[] {
    const ids = c.args.filter((a) => a.vals.length === 0 && /^\d+$/.test(a.key)).map((a) => BigInt(a.key));
    if (ids.length === 0) return [...this.nodes.values()];
    return ids.map((id) => this.nodeById(c, id));
  }
}

function arg(c: TestCase, key: string): CmdArg | undefined {
  return c.args.find((a) => a.key === key);
}

function flag(c: TestCase, key: string): boolean {
  return arg(c, key)?.vals[0] === "true";
}

/** The pos-th bare word after the command. */
function word(c: TestCase, pos: number, fallback?: string): string {
  const w = c.args.filter((a) => a.vals.length === 0)[pos]?.key ?? fallback;
  if (w === undefined) throw new ScriptError(c, `missing argument ${pos + 1}`);
  return w;
}

function intArg(c: TestCase, key: string): bigint {
  const v = arg(c, key)?.vals[0];
  if (v === undefined) throw new ScriptError(c, `missing ${key}=`);
  return BigInt(v);
}
