import { describe, expect, it } from "vitest";
import { ConfChange, ConfChangeType, EntryType } from "../../../src/raft/eraftpb.js";
import { CmdType, RaftCmdRequest } from "../../../src/proto/raft_cmdpb.js";
import { describeEntry, RaftWatch } from "./raft-watch.js";

const put = (key: string, index: bigint, term = 3n) => ({
  entryType: EntryType.EntryNormal,
  term,
  index,
  data: Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({
        requests: [{ cmdType: CmdType.Put, put: { cf: "default", key: Buffer.from(key), value: Buffer.from("v") } }],
      }),
    ).finish(),
  ),
});

describe("the simulation's raft watch", () => {
  it("fails the run when two replicas apply different entries at one index, naming the entry", () => {
    const failures: string[] = [];
    const watch = new RaftWatch(
      () => 1200,
      (m) => failures.push(m),
      () => "<cluster dump>",
    );
    const applied = watch.observer().applied!;
    applied(1n, 11n, 7n, put("a", 6n));
    applied(2n, 12n, 7n, put("a", 6n));
    applied(2n, 12n, 7n, put("a", 6n)); // replayed after a restart
    expect(failures).toEqual([]);
    applied(3n, 13n, 7n, put("b", 6n));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(
      /^raft: region 7 index 6 applied differently: store 1 peer 11 at 1200 applied term 3 #[0-9a-f]{14}, store 3 peer 13 at 1200 applied term 3 #[0-9a-f]{14}; the second entry: entry 6 term 3: Put default "b"\n<cluster dump>$/,
    );
  });

  it("counts each conf change once, however many replicas apply it", () => {
    const watch = new RaftWatch(
      () => 0,
      () => {},
      () => "",
    );
    const cc = {
      entryType: EntryType.EntryConfChange,
      term: 2n,
      index: 9n,
      data: Buffer.from(
        ConfChange.encode(ConfChange.fromPartial({ changeType: ConfChangeType.AddNode, nodeId: 5n })).finish(),
      ),
    };
    for (const store of [1n, 2n, 3n]) watch.observer().applied!(store, store, 1n, cc);
    expect(watch.confChanges).toBe(1);
    expect(describeEntry(cc)).toBe("entry 9 term 2: conf change AddNode peer 5");
    expect(describeEntry({ ...cc, entryType: EntryType.EntryNormal, data: Buffer.alloc(0) })).toBe(
      "entry 9 term 2: empty (a new leader's first entry)",
    );
  });
});
