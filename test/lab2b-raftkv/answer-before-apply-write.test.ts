// A leader answers a plain write once its apply batch is built and being written, not after the
// write completes (config.answerBeforeApplyWrite). A read that follows the answer must still see
// the write: reads are served only after that kv write lands. The simulated disk makes every
// apply write (unsynced) take 50 ms, so the read arrives while the write is in flight.
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../harness/cluster.js";

describe("a write answered while its apply batch is written", () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  for (const leaseReads of [true, false])
    it(`is seen by the read that follows its answer (lease reads ${leaseReads ? "on" : "off"})`, async () => {
      const c = new TestCluster({ stores: 3, disk: "sim", config: { leaseReads, answerBeforeApplyWrite: true } });
      cluster = c;
      await c.start();
      await c.put("k", "v0");
      for (const id of c.storeIds) c.simDisk(id)!.faults.writeLatencyMs = (w) => (w.sync ? 0 : 50);
      for (let i = 1; i <= 5; i++) {
        await c.put("k", `v${i}`);
        expect((await c.get("k"))?.toString(), `the read after put v${i} was answered`).toBe(`v${i}`);
      }
    }, 30_000);
});
