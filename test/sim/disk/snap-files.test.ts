import { describe, expect, it } from "vitest";
import { RAW_CF_DEFAULT, SimDisk } from "../../../src/kv/engine/index.js";
import type { SnapKey } from "../../../src/kv/raftstore/index.js";
import { SnapManager } from "../../../src/kv/raftstore/index.js";
import type { Region } from "../../../src/proto/metapb.js";

/**
 * Snapshot files on the simulated disk: the real SnapManager, its files in the disk's memory,
 * through generation, sending, receiving and installing, and what a power loss leaves behind.
 */

const region: Region = {
  id: 7n,
  startKey: Buffer.alloc(0),
  endKey: Buffer.alloc(0),
  regionEpoch: { confVer: 1n, version: 1n },
  peers: [],
};
const key: SnapKey = { regionId: 7n, term: 3n, index: 42n };

async function sourceDisk(): Promise<{ disk: SimDisk; snaps: SnapManager; size: number; checksum: number }> {
  const disk = new SimDisk({ name: "sender" });
  const kv = await disk.open("kv");
  const wb = kv.newBatch();
  for (let i = 0; i < 50; i++) wb.put(RAW_CF_DEFAULT, Buffer.from(`key${i}`), Buffer.alloc(100, i));
  await wb.write(true);
  const snaps = new SnapManager("snap", disk.files.mount());
  const snap = kv.snapshot();
  const integrity = await snaps.generate(key, snap, region);
  await snap.close();
  await kv.close();
  return { disk, snaps, ...integrity };
}

describe("snapshot files on the simulated disk", () => {
  it("generates, streams, receives and loads a snapshot with every byte in the disk's memory", async () => {
    const { disk, snaps, size, checksum } = await sourceDisk();
    expect(disk.files.paths()).toEqual(["snap/gen_7_3_42.snap"]);
    const receiver = new SimDisk({ name: "receiver" });
    const rsnaps = new SnapManager("snap", receiver.files.mount());
    await rsnaps.receive(key, snaps.readGenerated(key), { size, checksum }, () => true);
    expect(rsnaps.hasReceived(key)).toBe(true);
    expect(receiver.files.paths(), "the temp file was renamed into place").toEqual(["snap/rev_7_3_42.snap"]);
    const kv = await receiver.open("kv");
    const wb = kv.newBatch();
    expect(await rsnaps.loadInto(key, wb)).toBe(50);
    await wb.write(true);
    expect((await kv.get(RAW_CF_DEFAULT, Buffer.from("key9")))?.equals(Buffer.alloc(100, 9))).toBe(true);
    await kv.close();
  });

  it("refuses a file a power loss tore on the sender, and a restarted receiver deletes what it had received", async () => {
    const { disk, size, checksum } = await sourceDisk();
    // Nothing was fsynced: keep none of the directory journal's entries but the file (rng 0.99), and half its bytes (0.5).
    const draws = [0.99, 0.5];
    await disk.powerLoss(() => draws.shift() ?? 0);
    const after = new SnapManager("snap", disk.files.mount());
    const receiver = new SimDisk({ name: "receiver" });
    const rsnaps = new SnapManager("snap", receiver.files.mount());
    await expect(rsnaps.receive(key, after.readGenerated(key), { size, checksum }, () => true)).rejects.toThrow(
      /truncated data file|received \d+ bytes, the sender declared/,
    );
    expect(receiver.files.paths(), "the refused temp file is gone").toEqual([]);

    // A received file, then a crash: the next store start deletes it (it was never installed).
    const { snaps } = await sourceDisk();
    await rsnaps.receive(key, snaps.readGenerated(key), { size, checksum }, () => true);
    await receiver.crash();
    new SnapManager("snap", receiver.files.mount()).removeAllReceived();
    expect(receiver.files.paths()).toEqual([]);
  });

  it("names a half-received file from the store's history alone, so a replayed seed tears the same file in any process", async () => {
    const { snaps, size, checksum } = await sourceDisk();
    const receiver = new SimDisk({ name: "receiver" });
    const rsnaps = new SnapManager("snap", receiver.files.mount());
    async function* crashMidway() {
      let first = true;
      for await (const chunk of snaps.readGenerated(key)) {
        yield chunk.subarray(0, 100);
        if (first) await receiver.crash();
        first = false;
        yield chunk.subarray(100);
      }
    }
    await expect(rsnaps.receive(key, crashMidway(), { size, checksum }, () => true)).rejects.toThrow(
      /the process crashed/,
    );
    expect(receiver.files.paths(), "the dead process left its temp file").toEqual(["snap/rev_7_3_42.snap.1.tmp"]);
    new SnapManager("snap", receiver.files.mount()).removeAllReceived();
    expect(receiver.files.paths(), "the next start deletes it").toEqual([]);
  });
});
