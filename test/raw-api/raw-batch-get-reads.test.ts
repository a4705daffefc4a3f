// RawBatchGet refuses an answer whose values pass MAX_BATCH_GET_ANSWER_BYTES
// (12 MiB), but only after reading every value: raw.ts starts all the batch's reads at once
// (Promise.all) and sums the sizes afterwards. A batch may name 65,536 keys, and may name one key
// many times: a client that stored one 8 MiB value and asks for it 65,536 times in one ~1 MiB
// request makes the store read 65,536 copies — 512 GiB — before it refuses. Here the storage is a
// double that hands out one shared 8 MiB buffer and counts what it was asked to read.
import { expect, it } from "vitest";
import type { CfCursor } from "../../src/kv/engine/index.js";
import type { Storage, StorageReader } from "../../src/kv/storage/index.js";
import { RawHandlers } from "../../src/kv/server/raw.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import { RawBatchGetRequest } from "../../src/proto/kvrpcpb.js";

it("a RawBatchGet over the answer limit stops reading values once it is over", async () => {
  const value = Buffer.alloc(MAX_VALUE_BYTES, 0x61);
  let readBytes = 0;
  const reader: StorageReader = {
    async getCF(cf) {
      if (cf.includes("ttl")) return undefined; // no expiry
      readBytes += value.length;
      return value;
    },
    iterCF: () => undefined as unknown as CfCursor,
    close: async () => undefined,
  };
  const storage: Storage = {
    start: async () => undefined,
    stop: async () => undefined,
    write: async () => undefined,
    reader: async () => reader,
  };
  const raw = new RawHandlers(storage);
  const keys = Array.from({ length: 4096 }, () => Buffer.from("big"));
  const res = await raw.rawBatchGet(RawBatchGetRequest.fromPartial({ keys }));
  expect(res.error).toMatch(/bytes/);
  expect(
    readBytes,
    `${Math.round(readBytes / 2 ** 20)} MiB of values read to refuse a 12 MiB answer`,
  ).toBeLessThanOrEqual(256 << 20); // bounded, not proportional to the keys named (here 32 GiB)
});
