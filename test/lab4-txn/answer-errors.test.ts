// Errors that are answers (a region moved, a key is locked, a txn conflicts) capture no stack;
// a fault keeps its stack; neither changes the global stack-trace limit.
import { describe, expect, it } from "vitest";
import { KeyLockedError, TxnConflictError } from "../../src/client/errors.js";
import { RegionError } from "../../src/errors/region-error.js";
import { TinyKvError } from "../../src/util/errors.js";

describe("answer errors", () => {
  it("carry their name, message and context but no stack frames; faults keep theirs", () => {
    const limit = Error.stackTraceLimit;
    const locked = new KeyLockedError(Buffer.from("k"), 7n, Buffer.from("p"), 3000n);
    const conflict = new TxnConflictError(9n, "write conflict" as never, Buffer.from("k"), "a newer commit");
    const region = RegionError.fromPb({ message: "", notLeader: { regionId: 4n, leader: undefined } } as never);
    for (const e of [locked, conflict, region]) {
      expect(e.stack, `${e.name}: its stack is its first line`).toBe(`${e.name}: ${e.message}`);
    }
    expect(locked.context.key?.toString()).toBe("k");
    expect(region.context.regionId).toBe(4n);
    const fault = new TinyKvError("disk on fire");
    expect(fault.stack?.split("\n").length, "a fault's stack has frames").toBeGreaterThan(1);
    expect(Error.stackTraceLimit, "the global limit is restored").toBe(limit);
  });
});
