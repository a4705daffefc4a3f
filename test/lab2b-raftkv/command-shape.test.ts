// Apply's check of a logged command's shape (src/kv/raftstore/command-shape.ts): a request
// without the part its type needs, or in a CF the engine lacks, is refused before anything is
// written; before, apply dereferenced the missing part (a TypeError stopped the store).
import { expect, it } from "vitest";
import { malformedCommand } from "../../src/kv/raftstore/command-shape.js";
import { AdminCmdType, CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";

const cmd = (req: object) => RaftCmdRequest.fromPartial(req);
const key = Buffer.from("k");

it("refuses a request that lacks its part or names an unknown cf, and passes well-formed ones", () => {
  expect(malformedCommand(cmd({ requests: [{ cmdType: CmdType.DeleteRange }] }))).toMatch(/lacks its deleteRange/);
  expect(malformedCommand(cmd({ requests: [{ cmdType: CmdType.Put }] }))).toMatch(/request 0 \(Put\) lacks its put/);
  expect(
    malformedCommand(
      cmd({
        requests: [
          { cmdType: CmdType.Delete, delete: { cf: "", key } },
          { cmdType: CmdType.Put, put: { cf: "nope", key, value: key } },
        ],
      }),
    ),
  ).toMatch(/request 1 \(Put\) names an unknown cf "nope"/);
  expect(malformedCommand(cmd({ adminRequest: { cmdType: AdminCmdType.Split } }))).toMatch(/Split lacks/);
  expect(malformedCommand(cmd({ adminRequest: { cmdType: AdminCmdType.CompactLog } }))).toMatch(/CompactLog lacks/);
  expect(
    malformedCommand(
      cmd({
        requests: [
          { cmdType: CmdType.Put, put: { cf: "raw_default", key, value: key } },
          { cmdType: CmdType.DeleteRange, deleteRange: { cf: "raw_default", startKey: key, endKey: Buffer.from("z") } },
        ],
      }),
    ),
  ).toBeUndefined();
});
