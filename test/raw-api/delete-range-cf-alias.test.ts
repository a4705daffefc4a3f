// (Found by an independent review; this test failed before the fix.)
// apply treats a Put's cf "" as "default" (parseCf; command-shape.ts accepts ""), but
// the DeleteRange pre-scan (delete-range.ts keysOfRange) matches the turn's earlier puts by the
// raw cf string (`p.cf !== r.cf`). A Put{cf:""} followed, in the same turn, by a
// DeleteRange{cf:"default"} over its key is not listed, so the key survives the range delete on a
// replica that applied both in one turn, and is deleted on one that applied them in two turns:
// the replicas' data diverge (depends on turn grouping, not on entry bytes).
import { afterEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/eraftpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { Region } from "../../src/proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { CF_DEFAULT, Engine } from "../../src/kv/engine/index.js";
import type { ApplyTarget } from "../../src/kv/raftstore/apply.js";
import { applyEntries } from "../../src/kv/raftstore/apply.js";
import type { PeerStorage } from "../../src/kv/raftstore/peer-storage.js";
import { readsForTurn } from "../../src/kv/raftstore/delete-range.js";
import { tempDir } from "../harness/wait.js";

const b = (s: string) => Buffer.from(s);
const REGION = Region.fromPartial({
  id: 2n,
  startKey: b(""),
  endKey: b(""),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [{ id: 3n, storeId: 1n }],
});

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

function entry(index: bigint, requests: object[]): Entry {
  const data = Buffer.from(
    RaftCmdRequest.encode(
      RaftCmdRequest.fromPartial({ header: { regionId: 2n, regionEpoch: REGION.regionEpoch }, requests }),
    ).finish(),
  );
  return { entryType: EntryType.EntryNormal, term: 1n, index, data, context: Buffer.alloc(0) } as Entry;
}

function fakeTarget(appliedIndex: bigint): ApplyTarget {
  const storage = {
    region: REGION,
    rawChangesSince: 5n,
    applyState: { appliedIndex, truncatedState: { index: 5n, term: 5n } },
    get appliedIndex() {
      return this.applyState.appliedIndex;
    },
    get truncatedIndex() {
      return this.applyState.truncatedState.index;
    },
    writeApplyState() {},
    writeRegionState() {},
  };
  return {
    storage: storage as unknown as PeerStorage,
    selfPeerId: 3n,
    applyConfChange() {},
    hasInitializedRegion: () => false,
  };
}

async function applyInTurns(turns: Entry[][]): Promise<Buffer | undefined> {
  const dir = tempDir("tinykv-cf-");
  const kv = await Engine.open(dir.path);
  try {
    const target = fakeTarget(5n);
    for (const turn of turns) {
      const { rangeKeys, reads } = await readsForTurn(kv, [
        { region: REGION, appliedIndex: target.storage.appliedIndex, entries: turn },
      ]);
      const wb = kv.newBatch();
      const out = applyEntries(target, turn, wb, rangeKeys, reads);
      for (const r of out.responses) expect(r.resp.header?.error, `entry ${r.index} refused`).toBeUndefined();
      await wb.write(true);
    }
    return await kv.get(CF_DEFAULT, b("k"));
  } finally {
    await kv.close();
    dir.cleanup();
  }
}

describe("DeleteRange pre-scan and a Put whose cf is the empty alias of default", () => {
  it("deletes the key however the replica's turns group the entries", async () => {
    const entries = [
      entry(6n, [{ cmdType: CmdType.Put, put: { cf: "", key: b("k"), value: b("v") } }]),
      entry(7n, [{ cmdType: CmdType.DeleteRange, deleteRange: { cf: CF_DEFAULT, startKey: b("a"), endKey: b("z") } }]),
    ];
    const apart = await applyInTurns(entries.map((e) => [e]));
    const together = await applyInTurns([entries]);
    expect(apart, "two turns: the range delete removes k").toBeUndefined();
    expect(together, "one turn: k must be deleted too").toBeUndefined();
  });
});
