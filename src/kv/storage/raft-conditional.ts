import type { RaftCmdResponse, RaftRequestHeader, Request } from "../../proto/raft_cmdpb.js";
import { CmdType, RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { InvalidArgumentError } from "./errors.js";
import type { ConditionalOutcome, ConditionalWrite, Modify } from "./storage.js";

function toRequest(m: Modify): Request {
  if (m.kind === "put") return { cmdType: CmdType.Put, put: { cf: m.cf, key: m.key, value: m.value } };
  if (m.kind === "delete") return { cmdType: CmdType.Delete, delete: { cf: m.cf, key: m.key } };
  // Apply lists a range's keys before the turn (delete-range.ts), which a conditional write's writes skip.
  throw new InvalidArgumentError("a conditional write cannot carry a range delete");
}

/** The raft command of a conditional write: one request, decided at apply on every replica. */
export function conditionalWriteCommand(header: RaftRequestHeader, cw: ConditionalWrite): RaftCmdRequest {
  return RaftCmdRequest.fromPartial({
    header,
    requests: [
      {
        cmdType: CmdType.ConditionalWrite,
        conditionalWrite: {
          cf: cw.cf,
          key: cw.key,
          expectAbsent: cw.expected === undefined,
          expectedValue: cw.expected ?? Buffer.alloc(0),
          expiryCf: cw.expiry?.cf ?? "",
          nowMs: BigInt(Math.max(0, Math.floor(cw.expiry?.nowMs ?? 0))),
          writes: cw.writes.map(toRequest),
        },
      },
    ],
  });
}

export function conditionalWriteOutcome(resp: RaftCmdResponse): ConditionalOutcome {
  const result = resp.responses[0]?.conditionalWrite;
  // Apply always answers a conditional write with its result or a region error (handled before).
  if (!result) throw new Error("a conditional write applied without a result");
  return { succeed: result.succeed, previous: result.previousNotExist ? undefined : Buffer.from(result.previousValue) };
}
