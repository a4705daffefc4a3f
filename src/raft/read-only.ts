// Pending ReadIndex requests on the leader: each waits until a quorum acknowledged a heartbeat
// carrying its context, which proves the leader was still the leader when the read arrived.
import type { Message } from "./eraftpb.js";

export interface ReadIndexStatus {
  req: Message;
  index: bigint;
  acks: Set<bigint>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  private static key(ctx: Buffer): string {
    return ctx.toString("latin1");
  }

  /** Registers a read at the current commit index; a duplicate context is ignored. */
  addRequest(index: bigint, m: Message): void {
    const k = ReadOnly.key(m.context);
    if (this.pending.has(k)) return;
    this.pending.set(k, { req: m, index, acks: new Set() });
    this.queue.push(k);
  }

  /** Records that id acknowledged ctx; returns the acknowledgers so far. */
  recvAck(id: bigint, ctx: Buffer): Set<bigint> | undefined {
    const rs = this.pending.get(ReadOnly.key(ctx));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Releases every request queued up to and including ctx (a later ack covers earlier reads). */
  advance(ctx: Buffer): ReadIndexStatus[] {
    const k = ReadOnly.key(ctx);
    const pos = this.queue.indexOf(k);
    if (pos < 0) return [];
    const released = this.queue.splice(0, pos + 1);
    const out: ReadIndexStatus[] = [];
    for (const key of released) {
      const rs = this.pending.get(key);
      this.pending.delete(key);
      if (rs) out.push(rs);
    }
    return out;
  }

  lastPendingRequestCtx(): Buffer | undefined {
    if (this.queue.length === 0) return undefined;
    return this.pending.get(this.queue[this.queue.length - 1]!)!.req.context;
  }
}
