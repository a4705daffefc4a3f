/**
 * What apply checks of a logged command before it writes anything: every request carries the
 * part its type needs, in a CF the engine has. A leader of this build never logs anything else,
 * but a log holds what a peer sent: a command that fails here is answered with an error on every
 * replica alike (the check reads only the entry's bytes), never a stopped store.
 */
import type { RaftCmdRequest } from "../../proto/raft_cmdpb.js";
import { AdminCmdType, CmdType } from "../../proto/raft_cmdpb.js";
import { isCfName } from "../engine/index.js";

function knownCf(cf: string): boolean {
  return cf === "" || isCfName(cf);
}

/** The part of a Request that each type applied from the log needs. */
const PARTS = new Map<CmdType, "put" | "delete" | "deleteRange" | "conditionalWrite">([
  [CmdType.Put, "put"],
  [CmdType.Delete, "delete"],
  [CmdType.DeleteRange, "deleteRange"],
  [CmdType.ConditionalWrite, "conditionalWrite"],
]);

/** Why the command cannot be applied as it is, or undefined. */
export function malformedCommand(req: RaftCmdRequest): string | undefined {
  for (const [i, r] of req.requests.entries()) {
    const name = PARTS.get(r.cmdType);
    if (!name) continue; // apply refuses other types itself (reads never go through the log)
    const part = r[name];
    if (!part) return `request ${i} (${CmdType[r.cmdType]}) lacks its ${name} part`;
    if (!knownCf(part.cf)) return `request ${i} (${CmdType[r.cmdType]}) names an unknown cf ${JSON.stringify(part.cf)}`;
  }
  const admin = req.adminRequest;
  if (admin?.cmdType === AdminCmdType.CompactLog && !admin.compactLog) return "CompactLog lacks its compact_log part";
  if (admin?.cmdType === AdminCmdType.Split && !admin.split) return "Split lacks its split part";
  return undefined;
}
