import { describe, expect, it } from "vitest";
import type { RegionHeartbeatResponse } from "../../src/proto/schedulerpb.js";
import type { HeartbeatStream } from "../../src/scheduler/server/heartbeat-streams.js";
import { HeartbeatStreams, REBIND_INTERVAL_MS } from "../../src/scheduler/server/heartbeat-streams.js";
import { silentLogger } from "../../src/util/logger.js";
import { SimRuntime } from "../sim/runner/sim-runtime.js";

/** A server stream that records what the scheduler wrote to it. */
function fakeStream() {
  const written: RegionHeartbeatResponse[] = [];
  let ended = false;
  const stream = {
    destroyed: false,
    write: (r: RegionHeartbeatResponse) => written.push(r),
    end: () => (ended = true),
  } as unknown as HeartbeatStream;
  return { stream, written, ended: () => ended };
}

describe("lab3c region heartbeat streams: the keep-alive runs on the injected runtime", () => {
  it("every bound stream gets a header-only response each rebind interval of simulated time, none after closeAll", async () => {
    const runtime = new SimRuntime(1);
    const streams = new HeartbeatStreams(7n, () => runtime.now(), runtime, silentLogger);
    const a = fakeStream();
    const b = fakeStream();
    streams.bind(1n, a.stream);
    streams.bind(2n, b.stream);
    streams.startKeepAlive();

    await runtime.runUntil(REBIND_INTERVAL_MS - 1);
    expect(a.written).toHaveLength(0);
    await runtime.runUntil(2 * REBIND_INTERVAL_MS);
    for (const s of [a, b]) {
      expect(s.written).toHaveLength(2);
      expect(s.written.every((r) => r.header?.clusterId === 7n && r.regionId === 0n)).toBe(true);
    }

    streams.closeAll();
    expect(a.ended() && b.ended()).toBe(true);
    await runtime.runUntil(10 * REBIND_INTERVAL_MS);
    expect(a.written).toHaveLength(2);
  });
});
