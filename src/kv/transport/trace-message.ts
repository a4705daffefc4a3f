import type { Message } from "../../proto/eraftpb.js";
import { MessageType } from "../../proto/eraftpb.js";
import { hopTrace } from "../../util/hop-trace.js";

/**
 * Traces a raft message at `stage` (see util/hop-trace.ts): an append by its last entry (or, with
 * none, by the commit it carries), a response by the index it acknowledges. Heartbeats and votes
 * are left out: they carry no write.
 */
export function traceMessage(stage: string, m: Message): void {
  if (!hopTrace) return;
  switch (m.msgType) {
    case MessageType.MsgAppend: {
      const last = m.entries.length > 0 ? m.index + BigInt(m.entries.length) : undefined;
      return hopTrace(`${stage}.MsgAppend`, last, m.commit);
    }
    case MessageType.MsgAppendResponse:
      return hopTrace(`${stage}.MsgAppendResponse`, m.index, m.commit);
    case MessageType.MsgHeartbeat:
      return hopTrace(`${stage}.MsgHeartbeat`, undefined, m.commit);
  }
}
