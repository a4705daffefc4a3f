import { describe, it } from "vitest";
import { genericTest } from "../harness/generic.js";

describe("lab2b raft kv: TinyKV's GenericTest scenarios", () => {
  it("TestBasic2B", () => genericTest({ part: "2B", clients: 1 }));
  it("TestConcurrent2B", () => genericTest({ part: "2B", clients: 5 }));
  it("TestUnreliable2B", () => genericTest({ part: "2B", clients: 5, unreliable: true }));
  it("TestManyPartitionsOneClient2B", () => genericTest({ part: "2B", clients: 1, partitions: true }));
  it("TestManyPartitionsManyClients2B", () => genericTest({ part: "2B", clients: 5, partitions: true }));
  it("TestPersistOneClient2B", () => genericTest({ part: "2B", clients: 1, crash: true }));
  it("TestPersistConcurrent2B", () => genericTest({ part: "2B", clients: 5, crash: true }));
  it("TestPersistConcurrentUnreliable2B", () => genericTest({ part: "2B", clients: 5, unreliable: true, crash: true }));
  it("TestPersistPartition2B", () => genericTest({ part: "2B", clients: 5, crash: true, partitions: true }));
  it("TestPersistPartitionUnreliable2B", () =>
    genericTest({ part: "2B", clients: 5, unreliable: true, crash: true, partitions: true }));
});
