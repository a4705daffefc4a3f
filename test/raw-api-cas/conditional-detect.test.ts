import { describe, expect, it } from "vitest";
import { holdsConditionalWrite } from "../../src/kv/raftstore/conditional-write.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";

/** The store loop reads ahead only for entries holding a conditional write; it finds them by wire tags alone. */
describe("finding conditional writes in raft entries", () => {
  const entry = (req: Parameters<typeof RaftCmdRequest.fromPartial>[0], entryType = EntryType.EntryNormal) => ({
    entryType,
    term: 1n,
    index: 1n,
    data: Buffer.from(RaftCmdRequest.encode(RaftCmdRequest.fromPartial(req)).finish()),
  });
  const header = { regionId: 7n, regionEpoch: { confVer: 1n, version: 3n }, peer: { id: 2n, storeId: 2n } };
  const put = { cmdType: CmdType.Put, put: { cf: "raw_default", key: Buffer.from("k"), value: Buffer.alloc(300, 1) } };
  const cas = {
    cmdType: CmdType.ConditionalWrite,
    conditionalWrite: { cf: "raw_default", key: Buffer.from("k"), writes: [put] },
  };

  it("finds one among other requests, and only there", () => {
    expect(holdsConditionalWrite(entry({ header, requests: [put, cas] }))).toBe(true);
    expect(holdsConditionalWrite(entry({ header, requests: [put, put] }))).toBe(false);
    expect(holdsConditionalWrite(entry({ header, adminRequest: { cmdType: 3, compactLog: {} } }))).toBe(false);
    expect(holdsConditionalWrite(entry({ header, requests: [cas] }, EntryType.EntryConfChange))).toBe(false);
  });

  it("answers maybe (true) for data it cannot walk, without throwing: the caller decodes, and apply refuses it", () => {
    const bad = (bytes: number[]) => ({
      entryType: EntryType.EntryNormal,
      term: 1n,
      index: 1n,
      data: Buffer.from(bytes),
    });
    expect(holdsConditionalWrite(bad([0x12, 0xff]))).toBe(true);
    expect(holdsConditionalWrite(bad([0x12, 0x05, 0x08]))).toBe(true);
    expect(holdsConditionalWrite(bad([0x0f]))).toBe(true);
    expect(holdsConditionalWrite(bad([]))).toBe(false);
  });
});
