// One-line descriptions of raft's messages, entries and Readys, so a script's expected output
// reads as the conversation between the nodes.
import type { Entry, HardState, Message, Ready, Snapshot } from "../../../src/raft/testing.js";
import { ConfChange, ConfChangeType, EntryType, MessageType, StateType } from "../../../src/raft/testing.js";

export function describeEntry(e: Entry): string {
  if (e.entryType === EntryType.EntryConfChange) {
    const cc = ConfChange.decode(e.data);
    return `${e.term}/${e.index} EntryConfChange ${ConfChangeType[cc.changeType]} ${cc.nodeId}`;
  }
  return `${e.term}/${e.index} EntryNormal ${JSON.stringify(e.data.toString())}`;
}

export function describeEntries(es: Entry[]): string {
  return es.map(describeEntry).join(", ");
}

export function describeSnapshot(s: Snapshot): string {
  const m = s.metadata;
  return `Index:${m?.index ?? 0n} Term:${m?.term ?? 0n} ConfState:(${(m?.confState?.nodes ?? []).join(" ")})`;
}

export function describeHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

export function stateName(s: StateType): string {
  return `State${StateType[s]}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.msgType]} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.commit !== 0n) s += ` Commit:${m.commit}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.entries.length > 0) s += ` Entries:[${describeEntries(m.entries)}]`;
  if (m.snapshot?.metadata && m.snapshot.metadata.index !== 0n) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  if (m.context.length > 0) s += ` Context:${JSON.stringify(m.context.toString())}`;
  return s;
}

/** Every part of a Ready that is present, one item a line; note() may annotate a message. */
export function describeReady(rd: Ready, note: (m: Message) => string = () => ""): string[] {
  const out = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState) out.push(`Lead:${rd.softState.lead} ${stateName(rd.softState.raftState)}`);
  if (rd.hardState) out.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.snapshot) out.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) out.push("Entries:", ...rd.entries.map(describeEntry));
  if (rd.committedEntries.length > 0) out.push("CommittedEntries:", ...rd.committedEntries.map(describeEntry));
  if (rd.messages.length > 0) out.push("Messages:", ...rd.messages.map((m) => describeMessage(m) + note(m)));
  if (rd.readStates.length > 0) {
    out.push(
      "ReadStates:",
      ...rd.readStates.map((r) => `Index:${r.index} Context:${JSON.stringify(r.requestCtx.toString())}`),
    );
  }
  return out;
}
