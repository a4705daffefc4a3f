// A DeleteRange's pre-turn scan (delete-range.ts keysOfRange) lists its keys and marks them
// present in the turn's ConditionalReads; apply only asks whether each key holds a value
// (presentKeys). It once kept every listed key's VALUE there: with 10,000 keys per entry and
// values up to 8 MiB, one turn could hold ~80 GB (found by an independent review; this test
// failed then, with 24.0 MiB held for 24 keys of 1 MiB).
import { afterEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/raft/eraftpb.js";
import { EntryType } from "../../src/raft/eraftpb.js";
import { Region } from "../../src/proto/metapb.js";
import { CmdType, RaftCmdRequest } from "../../src/proto/raft_cmdpb.js";
import { Engine, RAW_CF_DEFAULT } from "../../src/kv/engine/index.js";
import { readsForTurn } from "../../src/kv/raftstore/delete-range.js";
import { tempDir } from "../harness/wait.js";

const MiB = 1024 * 1024;
const KEYS = 24;

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe("DeleteRange pre-scan memory", () => {
  it("does not hold the values of the keys a DeleteRange lists (it only needs their presence)", async () => {
    const dir = tempDir("tinykv-review-delrange-");
    const kv = await Engine.open(dir.path);
    cleanup = async () => {
      await kv.close();
      dir.cleanup();
    };
    for (let i = 0; i < KEYS; i++) {
      const wb = kv.newBatch();
      wb.put(RAW_CF_DEFAULT, Buffer.from(`k${String(i).padStart(3, "0")}`), Buffer.alloc(MiB, i));
      await wb.write(false);
    }
    const region = Region.fromPartial({
      id: 2n,
      startKey: Buffer.alloc(0),
      endKey: Buffer.alloc(0),
      regionEpoch: { confVer: 1n, version: 1n },
    });
    const data = Buffer.from(
      RaftCmdRequest.encode(
        RaftCmdRequest.fromPartial({
          header: { regionId: 2n },
          requests: [
            {
              cmdType: CmdType.DeleteRange,
              deleteRange: { cf: RAW_CF_DEFAULT, startKey: Buffer.from("k"), endKey: Buffer.from("l") },
            },
          ],
        }),
      ).finish(),
    );
    const entry = { entryType: EntryType.EntryNormal, term: 6n, index: 6n, data, context: Buffer.alloc(0) } as Entry;
    const { rangeKeys, reads } = await readsForTurn(kv, [{ region, appliedIndex: 5n, entries: [entry] }]);
    expect(rangeKeys.get(entry)![0]!.length).toBe(KEYS);
    // White-box: the bytes of values the turn keeps for its apply.
    const values = (reads as unknown as { values: Map<string, Buffer | undefined> }).values;
    let held = 0;
    for (const v of values.values()) held += v?.length ?? 0;
    expect(held, `the turn holds ${(held / MiB).toFixed(1)} MiB of values for a range of ${KEYS} x 1 MiB`).toBeLessThan(
      MiB,
    );
  }, 30_000);
});
