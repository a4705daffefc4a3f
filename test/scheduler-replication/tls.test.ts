// A replicated scheduler with mutual TLS: the members elect a leader over their TLS peer port, a
// client with the cluster's certificate fails over between members, and one without is refused.
import { afterEach, describe, expect, it } from "vitest";
import { SchedulerRpcClient } from "../../src/scheduler/client/client.js";
import { TlsConfig } from "../../src/util/tls.js";
import { makeTestCerts, opensslMissing } from "../harness/tls-certs.js";
import { tempDir } from "../harness/wait.js";
import { MemberGroup } from "./members.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const missing = opensslMissing();
if (missing) console.warn(missing);

describe.skipIf(missing !== undefined)("replicated scheduler with mutual TLS", () => {
  it("members elect over TLS, a client with the cluster's certificate fails over, one without is refused", async () => {
    const dir = tempDir("tinysched-tls-");
    cleanups.push(() => dir.cleanup());
    const certs = makeTestCerts(dir.path);
    const group = await MemberGroup.create(3, TlsConfig.fromFiles(certs.node));
    cleanups.push(() => group.close());
    await group.startAll();
    const leader = await group.leader("a leader elected over the members' TLS peer port");

    const client = await SchedulerRpcClient.connect(group.addrs(), {
      tls: TlsConfig.fromFiles(certs.client),
      connectDeadlineMs: 15_000,
      retryDeadlineMs: 10_000,
    });
    cleanups.push(() => client.close());
    const first = await client.tso();
    await group.stop(leader);
    await group.leader("a new leader after the old one stopped");
    const second = await client.tso();
    expect(second > first, "a timestamp after the failover is above the one before").toBe(true);

    await expect(
      SchedulerRpcClient.connect(group.addrs(), { connectDeadlineMs: 2_000, timeoutMs: 500 }),
      "a plaintext client is refused",
    ).rejects.toThrow();
  }, 90_000);
});
