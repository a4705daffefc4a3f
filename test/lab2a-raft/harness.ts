// Test harness for the raft unit tests, after the course's: build a Raft directly, run a
// synchronous in-memory network between Rafts (send / cut / isolate / drop / ignore / recover),
// dump logs for comparison.
import type { Entry, Message, RaftConfig } from "../../src/raft/testing.js";
import {
  EntryType,
  ErrProposalDropped,
  MessageType,
  MemoryStorage,
  Raft,
  StateType,
  follower,
  leader,
  newEntry,
  newMessage,
  seededRandom,
} from "../../src/raft/testing.js";

export { StateType, MessageType, EntryType };

export type Options = Partial<Omit<RaftConfig, "id" | "peers" | "storage">>;

export function ids(n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => BigInt(i + 1));
}

/** A Raft with the handlers the course's tests call directly, outside of step(). */
export class TestRaft extends Raft {
  sendAppend(to: bigint): boolean {
    return leader.maybeSendAppend(this, to, true);
  }

  handleAppendEntries(m: Message): void {
    follower.handleAppendEntries(this, m);
  }

  handleHeartbeat(m: Message): void {
    follower.handleHeartbeat(this, m);
  }

  handleSnapshot(m: Message): void {
    follower.handleSnapshot(this, m);
  }
}

export function newTestRaft(
  id: bigint,
  peers: bigint[],
  election: number,
  heartbeat: number,
  storage: MemoryStorage = new MemoryStorage(),
  opts: Options = {},
): TestRaft {
  return new TestRaft({ id, peers, electionTick: election, heartbeatTick: heartbeat, storage, ...opts });
}

export function msg(m: Partial<Message> & { msgType: MessageType }): Message {
  return newMessage(m);
}

export function ent(index: number | bigint, term: number | bigint, data?: string): Entry {
  return newEntry({
    index: BigInt(index),
    term: BigInt(term),
    data: data === undefined ? undefined : Buffer.from(data),
  });
}

/** Takes the messages a raft produced, as the course's readMessages. */
export function readMessages(r: Raft): Message[] {
  const msgs = r.msgs;
  r.msgs = [];
  return msgs;
}

/**
 * What an application does after each step: persists the unstable entries (at once, here) and
 * tells raft, so a leader counts its own copy (it does not before its entries are durable).
 */
export function persistUnstable(r: Raft): void {
  const unstable = r.raftLog.unstableEntries();
  // With a snapshot pending, the application installs it first (the tests do that themselves).
  if (unstable.length === 0 || r.raftLog.pendingSnapshot || !(r.raftLog.storage instanceof MemoryStorage)) return;
  r.raftLog.storage.append(unstable);
  const last = unstable[unstable.length - 1]!;
  r.raftLog.stableTo(last.index, last.term);
  if (r.state === StateType.Leader) leader.ownEntriesPersisted(r, r.raftLog.stabled);
}

/** Persists the unstable entries, returns the newly committed ones and marks them applied. */
export function nextEnts(r: Raft, s: MemoryStorage): Entry[] {
  const unstable = r.raftLog.unstableEntries();
  s.append(unstable);
  if (unstable.length > 0) {
    const last = unstable[unstable.length - 1]!;
    r.raftLog.stableTo(last.index, last.term);
    if (r.state === StateType.Leader) leader.ownEntriesPersisted(r, r.raftLog.stabled);
  }
  const ents = r.raftLog.nextCommittedEnts();
  r.raftLog.appliedTo(r.raftLog.committed);
  return ents;
}

export function acceptAndReply(m: Message): Message {
  if (m.msgType !== MessageType.MsgAppend) throw new Error("type should be MsgAppend");
  return msg({
    msgType: MessageType.MsgAppendResponse,
    from: m.to,
    to: m.from,
    term: m.term,
    index: m.index + BigInt(m.entries.length),
  });
}

/** Makes a freshly made leader commit its no-op entry by acknowledging it from every follower. */
export function commitNoopEntry(r: TestRaft, s: MemoryStorage): void {
  if (r.state !== StateType.Leader) throw new Error("it should only be used when it is the leader");
  persistUnstable(r); // the leader's own copy of the no-op counts once durable
  if (r.msgs.length === 0) for (const id of r.prs.keys()) if (id !== r.id) r.sendAppend(id);
  for (const m of readMessages(r)) {
    if (m.msgType !== MessageType.MsgAppend || m.entries.length !== 1 || m.entries[0]!.data.length !== 0) {
      throw new Error("not a message to append noop entry");
    }
    r.step(acceptAndReply(m));
  }
  readMessages(r); // the commit-index refresh to followers
  nextEnts(r, s);
}

/** A textual dump of a log for equality checks between nodes. */
export function ltoa(r: Raft): string {
  const log = r.raftLog;
  const lines = [`committed: ${log.committed}`, `applied: ${log.applied}`];
  for (const e of log.allEntries()) lines.push(`#${e.index}: t${e.term} ${e.entryType} ${e.data.toString("hex")}`);
  return lines.join("\n");
}

export function entryList(r: Raft): string[] {
  return r.raftLog.allEntries().map((e) => `${e.index}/${e.term}/${e.data.toString()}`);
}

export interface StateMachine {
  step(m: Message): void;
  readMessages(): Message[];
}

/** A node that swallows everything (a dead peer). */
export const blackHole: StateMachine = { step: () => {}, readMessages: () => [] };

type PeerSpec = Raft | null | StateMachine | ((id: bigint, peers: bigint[]) => Raft);

export class Network {
  readonly peers = new Map<bigint, StateMachine | Raft>();
  readonly storage = new Map<bigint, MemoryStorage>();
  private dropm = new Map<string, number>();
  private ignorem = new Set<MessageType>();
  private readonly rand = seededRandom(42);
  /** Messages put on the wire, after filtering (tests inspect them). */
  msgHook: ((m: Message) => boolean) | undefined = undefined;

  constructor(specs: PeerSpec[], opts: Options = {}) {
    const peerIds = ids(specs.length);
    specs.forEach((spec, i) => {
      const id = peerIds[i]!;
      if (spec === null) {
        const s = new MemoryStorage();
        this.storage.set(id, s);
        this.peers.set(id, newTestRaft(id, peerIds, 10, 1, s, opts));
      } else if (typeof spec === "function") {
        this.peers.set(id, spec(id, peerIds));
      } else {
        this.peers.set(id, spec);
      }
    });
  }

  raft(id: number | bigint): TestRaft {
    const p = this.peers.get(BigInt(id));
    if (!(p instanceof TestRaft)) throw new Error(`peer ${id} is not a TestRaft (build it with newTestRaft)`);
    return p;
  }

  /** Delivers messages synchronously until the network is quiet. */
  send(...msgs: Message[]): void {
    const queue = [...msgs];
    while (queue.length > 0) {
      const m = queue.shift()!;
      const p = this.peers.get(m.to);
      if (!p) continue;
      if (p instanceof Raft) {
        try {
          p.step(m);
        } catch (e) {
          if (!(e instanceof ErrProposalDropped)) throw e;
        }
        persistUnstable(p);
        queue.push(...this.filter(readMessages(p)));
      } else {
        p.step(m);
        queue.push(...this.filter(p.readMessages()));
      }
    }
  }

  drop(from: number | bigint, to: number | bigint, perc: number): void {
    this.dropm.set(`${from}-${to}`, perc);
  }

  cut(a: number | bigint, b: number | bigint): void {
    this.drop(a, b, 2);
    this.drop(b, a, 2);
  }

  isolate(id: number | bigint): void {
    for (const other of this.peers.keys()) if (other !== BigInt(id)) this.cut(id, other);
  }

  ignore(t: MessageType): void {
    this.ignorem.add(t);
  }

  recover(): void {
    this.dropm.clear();
    this.ignorem.clear();
  }

  private filter(msgs: Message[]): Message[] {
    return msgs.filter((m) => {
      if (this.ignorem.has(m.msgType)) return false;
      if (m.msgType === MessageType.MsgHup) throw new Error("unexpected MsgHup on the network");
      const perc = this.dropm.get(`${m.from}-${m.to}`) ?? 0;
      if (perc > 0 && this.rand() < perc) return false;
      if (this.msgHook && !this.msgHook(m)) return false;
      return true;
    });
  }
}

export function newNetwork(...specs: PeerSpec[]): Network {
  return new Network(specs);
}

export function newNetworkWithConfig(opts: Options, ...specs: PeerSpec[]): Network {
  return new Network(specs, opts);
}

export function hup(id: number | bigint): Message {
  return msg({ msgType: MessageType.MsgHup, from: BigInt(id), to: BigInt(id) });
}

export function beat(id: number | bigint): Message {
  return msg({ msgType: MessageType.MsgBeat, from: BigInt(id), to: BigInt(id) });
}

export function prop(id: number | bigint, data = "somedata"): Message {
  return msg({
    msgType: MessageType.MsgPropose,
    from: BigInt(id),
    to: BigInt(id),
    entries: [newEntry({ data: Buffer.from(data) })],
  });
}

/** A raft whose storage already holds entries with the given terms (indexes 1..n). */
export function entsWithConfig(opts: Options, ...terms: number[]): (id: bigint, peers: bigint[]) => TestRaft {
  return (id, peers) => {
    const s = new MemoryStorage();
    s.append(terms.map((t, i) => ent(i + 1, t)));
    const r = newTestRaft(id, peers, 5, 1, s, opts);
    r.becomeFollower(BigInt(terms[terms.length - 1] ?? 0), 0n);
    return r;
  };
}

/** A raft that voted for vote in term and has an empty log. */
export function votedWithConfig(opts: Options, vote: bigint, term: bigint): (id: bigint, peers: bigint[]) => TestRaft {
  return (id, peers) => {
    const s = new MemoryStorage();
    s.setHardState({ vote, term, commit: 0n });
    const r = newTestRaft(id, peers, 5, 1, s, opts);
    r.becomeFollower(term, 0n);
    r.vote = vote;
    return r;
  };
}

/** A raft that holds exactly the given entries (in storage) and the given term. */
export function raftWithLog(id: bigint, peers: bigint[], entries: Entry[], term: bigint, opts: Options = {}): TestRaft {
  const s = new MemoryStorage();
  s.append(entries);
  s.setHardState({ term, vote: 0n, commit: 0n });
  return newTestRaft(id, peers, 10, 1, s, opts);
}

export function stateName(s: StateType): string {
  return StateType[s];
}
