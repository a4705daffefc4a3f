// The change hub decodes a region's entries for commit records only while a listener needs them:
// a raw feed alone reads only the raw record apply wrote.
import { expect, it } from "vitest";
import { CF_WRITE } from "../../src/kv/engine/index.js";
import { NO_OBSERVER } from "../../src/kv/raftstore/index.js";
import type { AppliedChange } from "../../src/kv/watch/index.js";
import { ChangeHub } from "../../src/kv/watch/index.js";
import { Region } from "../../src/proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { silentLogger } from "../../src/util/logger.js";

const region = Region.fromPartial({ id: 1n, regionEpoch: { confVer: 1n, version: 1n } });

function applyCommit(hub: ChangeHub, index: bigint): void {
  const observer = hub.observer(NO_OBSERVER);
  const data = Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({
        header: { regionId: 1n, regionEpoch: region.regionEpoch },
        requests: [{ cmdType: CmdType.Put, put: { cf: CF_WRITE, key: Buffer.from("k"), value: Buffer.from("w") } }],
      }),
    ).finish(),
  );
  const turn = observer.turn();
  observer.applied!(1n, 1n, 1n, { entryType: EntryType.EntryNormal, term: 1n, index, data }, undefined);
  turn.applied(1);
}

it("decodes commit records only while some listener of the region needs them", () => {
  const hub = new ChangeHub(silentLogger);
  hub.attach({ regionOf: () => region });
  const raw: AppliedChange[] = [];
  const txn: AppliedChange[] = [];
  hub.subscribe(1n, (c) => raw.push(...c), { commitRecords: false });
  applyCommit(hub, 5n);
  expect(raw.map((c) => c.writes.length)).toEqual([0]);
  const stop = hub.subscribe(1n, (c) => txn.push(...c));
  applyCommit(hub, 6n);
  expect(txn.map((c) => c.writes.map((w) => w.key.toString()))).toEqual([["k"]]);
  stop();
  applyCommit(hub, 7n);
  expect(raw.map((c) => [c.index, c.writes.length])).toEqual([
    [5n, 0],
    [6n, 1],
    [7n, 0],
  ]);
});
