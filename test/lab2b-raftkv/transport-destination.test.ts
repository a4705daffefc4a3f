import { describe, expect, it } from "vitest";
import { MessageType } from "../../src/proto/eraftpb.js";
import { RaftMessage } from "../../src/proto/raft_serverpb.js";
import type { QueuedMessage } from "../../src/kv/transport/grpc-destination.js";
import { Destination, InvalidLinkTransitionError, ReconnectBackoff } from "../../src/kv/transport/grpc-destination.js";
import { GrpcTransport, StaticResolver } from "../../src/kv/transport/index.js";
import type { Runtime } from "../../src/util/runtime.js";
import { realRuntime } from "../../src/util/runtime.js";
import { freePort } from "../harness/ports.js";
import { waitFor } from "../harness/wait.js";

/**
 * The gRPC transport's per-destination state machine on its own: no sockets, a clock and a
 * "random" source the test controls, fake streams and clients (only their identity matters).
 */
type FakeStream = { name: string };
type FakeClient = { name: string };

function msg(regionId: bigint, index: number): QueuedMessage {
  const m = RaftMessage.fromPartial({
    regionId,
    fromPeer: { id: 10n, storeId: 1n },
    toPeer: { id: 20n, storeId: 2n },
    message: { msgType: MessageType.MsgAppend, index: BigInt(index) },
  });
  return { msg: m, size: 100 };
}

function destination(initialMs = 100, maxMs = 800) {
  return new Destination<FakeStream, FakeClient>(2n, new ReconnectBackoff(initialMs, maxMs));
}

function open(name: string) {
  return { client: { name: `client-${name}` }, stream: { name }, done: Promise.resolve() };
}

const noJitter = () => 1 - Number.EPSILON; // the factor 0.5 + r/2 is then (almost) 1
const halfJitter = () => 0; // the factor is 0.5

describe("lab2b transport: a destination's stream state machine", () => {
  it("idle → connecting → connected, and only the current stream's link is found", () => {
    const d = destination();
    expect(d.state.kind).toBe("idle");
    expect(d.canConnect(0)).toBe(true);
    d.beginConnect(0);
    expect(d.state.kind).toBe("connecting");
    expect(d.canConnect(0)).toBe(false);
    const first = open("a");
    expect(d.opened(first, 5)).toBe(true);
    expect(d.state.kind).toBe("connected");
    expect(d.linkOf(first.stream)?.client).toBe(first.client);
    expect(d.linkOf({ name: "other" })).toBeUndefined();
  });

  it("a broken stream backs off with capped doubling waits, losing what was in flight and queued", () => {
    const d = destination(100, 800);
    let now = 0;
    const waits: number[] = [];
    const firsts: boolean[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      d.beginConnect(now);
      const s = open(`s${attempt}`);
      d.opened(s, now);
      d.linkOf(s.stream)!.inFlight.set("1/20", msg(1n, attempt).msg);
      d.enqueue([msg(1n, 100 + attempt)], { maxMessages: 10, maxBytes: 1e6 });
      now += 10; // each stream dies quickly: not healthy, so the backoff keeps growing
      const failure = d.streamBroken(s.stream, now, noJitter)!;
      expect(failure.client).toBe(s.client);
      expect(failure.inFlight.map((m) => Number(m.message!.index))).toEqual([attempt]);
      expect(failure.queued.map((q) => Number(q.msg.message!.index))).toEqual([100 + attempt]);
      expect(d.queueLength).toBe(0);
      expect(d.queuedBytes).toBe(0);
      expect(d.state).toEqual({ kind: "backingOff", until: now + failure.waitMs });
      expect(d.isBackingOff(now + failure.waitMs - 1)).toBe(true);
      expect(d.canConnect(now + failure.waitMs - 1)).toBe(false);
      waits.push(failure.waitMs);
      firsts.push(failure.firstFailure);
      now += failure.waitMs;
      expect(d.isBackingOff(now)).toBe(false);
      expect(d.canConnect(now)).toBe(true);
    }
    expect(waits).toEqual([100, 200, 400, 800, 800, 800]);
    expect(firsts).toEqual([true, false, false, false, false, false]);
  });

  it("the jitter comes from the injected randomness: a factor in [0.5, 1) of the step", () => {
    const b = new ReconnectBackoff(100, 3000);
    expect(b.next(halfJitter)).toBe(50);
    expect(b.next(() => 0.5)).toBe(150); // step 200 × 0.75
    expect(b.next(noJitter)).toBe(400);
    const seeded = [0.1, 0.9, 0.3];
    const replay = () => {
      const r = new ReconnectBackoff(100, 3000);
      let i = 0;
      return seeded.map(() => r.next(() => seeded[i++]!));
    };
    expect(replay()).toEqual(replay());
  });

  it("a stream that stayed up at least the cap was healthy: the next failure starts the backoff over", () => {
    const d = destination(100, 800);
    d.beginConnect(0);
    const a = open("a");
    d.opened(a, 0);
    const f1 = d.streamBroken(a.stream, 10, noJitter)!;
    d.beginConnect(10 + f1.waitMs);
    const b = open("b");
    d.opened(b, 10 + f1.waitMs);
    const f2 = d.streamBroken(b.stream, 10 + f1.waitMs + 800, noJitter)!;
    expect([f1.waitMs, f2.waitMs]).toEqual([100, 100]);
    expect(f2.firstFailure).toBe(true);
  });

  it("a failed connect backs off without a client to close and forgets the address", () => {
    const d = destination();
    d.addr = "127.0.0.1:1";
    d.beginConnect(0);
    const f = d.connectFailed(0, halfJitter)!;
    expect(f.client).toBeUndefined();
    expect(f.waitMs).toBe(50);
    expect(d.state.kind).toBe("backingOff");
    expect(d.addr).toBeUndefined();
  });

  it("a second report of the same broken stream (callback and 'error' event) is ignored", () => {
    const d = destination();
    d.beginConnect(0);
    const a = open("a");
    d.opened(a, 0);
    expect(d.streamBroken(a.stream, 1, noJitter)).toBeDefined();
    expect(d.streamBroken(a.stream, 1, noJitter)).toBeUndefined();
    // A late callback of an old stream does not break the new one.
    d.beginConnect(1000);
    const b = open("b");
    d.opened(b, 1000);
    expect(d.streamBroken(a.stream, 1001, noJitter)).toBeUndefined();
    expect(d.state.kind).toBe("connected");
  });

  it("close from any state ends in closed, hands back the open stream, and later events are ignored", () => {
    const connected = destination();
    connected.beginConnect(0);
    const a = open("a");
    connected.opened(a, 0);
    connected.enqueue([msg(1n, 1)], { maxMessages: 10, maxBytes: 1e6 });
    expect(connected.close()?.stream).toBe(a.stream);
    expect(connected.state.kind).toBe("closed");
    expect(connected.queueLength).toBe(0);
    expect(connected.streamBroken(a.stream, 1, noJitter)).toBeUndefined();

    const connecting = destination();
    connecting.beginConnect(0);
    expect(connecting.close()).toBeUndefined();
    expect(connecting.opened(open("late"), 1)).toBe(false);
    expect(connecting.connectFailed(1, noJitter)).toBeUndefined();
    expect(connecting.state.kind).toBe("closed");
    expect(connecting.canConnect(1e9)).toBe(false);
  });

  it("transitions the machine does not have are refused with a typed error", () => {
    const d = destination();
    expect(() => d.opened(open("a"), 0)).toThrow(InvalidLinkTransitionError);
    expect(() => d.connectFailed(0, noJitter)).toThrow(/connectFailed is not allowed from idle/);
    d.beginConnect(0);
    expect(() => d.beginConnect(0)).toThrow(/beginConnect is not allowed from connecting/);
    d.opened(open("a"), 0);
    expect(() => d.beginConnect(0)).toThrow(InvalidLinkTransitionError);
  });

  it("the queue is bounded in count and bytes, drops the oldest, and always keeps the newest", () => {
    const d = destination();
    const dropped = d.enqueue(
      [1, 2, 3, 4, 5].map((i) => msg(1n, i)),
      { maxMessages: 3, maxBytes: 1e6 },
    );
    expect(dropped.map((q) => Number(q.msg.message!.index))).toEqual([1, 2]);
    expect(d.queueLength).toBe(3);
    expect(d.queuedBytes).toBe(300);
    const big = { ...msg(1n, 6), size: 10_000 };
    const dropped2 = d.enqueue([big], { maxMessages: 10, maxBytes: 500 });
    expect(dropped2.map((q) => Number(q.msg.message!.index))).toEqual([3, 4, 5]);
    expect(d.peek()).toBe(big);
    expect(d.queuedBytes).toBe(10_000);
    expect(d.shift()).toBe(big);
    expect(d.queuedBytes).toBe(0);
  });
});

describe("lab2b transport: the gRPC transport's backoff runs on the injected runtime", () => {
  it("with the runtime's clock held still, a dead store is not redialled until the clock passes the jittered wait", async () => {
    let clock = 1_000_000;
    // Real timers and deferral (real sockets), but the clock and the jitter are the test's.
    const runtime: Runtime = { ...realRuntime, now: () => clock, random: () => 0 };
    const unreachable: RaftMessage[] = [];
    const t = new GrpcTransport({
      storeId: 1n,
      resolver: new StaticResolver([[2n, `127.0.0.1:${await freePort()}`]]),
      snapshotSource: () => {
        throw new Error("no snapshots");
      },
      events: { onUnreachable: (m) => unreachable.push(m) },
      runtime,
      reconnectBackoffMs: 1000,
      maxReconnectBackoffMs: 8000,
    });
    try {
      t.send(msg(1n, 1).msg);
      t.flush();
      await waitFor(() => t.stats.streamFailures === 1, {
        timeoutMs: 10_000,
        message: "the stream to the dead store failed",
      });
      expect(t.stats.streamsOpened).toBe(1);
      // random() = 0 makes the wait half the first step: 500 ms on the runtime's clock.
      clock += 499;
      const before = unreachable.length;
      t.send(msg(1n, 2).msg);
      t.flush();
      await waitFor(() => unreachable.length > before, {
        timeoutMs: 2000,
        message: "a send while backing off reported unreachable",
      });
      expect(t.stats.streamsOpened).toBe(1);
      clock += 1;
      t.send(msg(1n, 3).msg);
      t.flush();
      await waitFor(() => t.stats.streamsOpened === 2, { timeoutMs: 2000, message: "redialled once the wait passed" });
    } finally {
      await t.close();
    }
  });
});
