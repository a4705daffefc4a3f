// BatchCommands packs every answer finished in one event-loop turn into one
// BatchCommandsResponse (batch-commands.ts answer/flush) with no regard for its size. RawGets of
// max-size values (8 MiB each, within the limits) answered in the same turn make one message over
// the 16 MiB gRPC ceiling (MAX_GRPC_MESSAGE_BYTES): grpc-js refuses to send it and the whole
// stream fails, so those reads — and every other sub-request pending on the stream — fail, though
// each answer alone fits and the same reads by unary rpcs succeed.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import { BatchCommandsRequest, BatchCommandsResponse } from "../../src/proto/tinykvpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

let dir: ReturnType<typeof tempDir>;
let node: StandaloneNode;
let addr: string;
beforeAll(async () => {
  dir = tempDir();
  node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
  addr = `127.0.0.1:${node.port}`;
});
afterAll(async () => {
  await node.stop();
  dir.cleanup();
});

// The client takes answers up to 256 MiB: what fails below is the server's send.
const BIG = { "grpc.max_receive_message_length": 256 << 20, "grpc.max_send_message_length": 256 << 20 };

it("max-size values read at once over BatchCommands all come back", async () => {
  const unary = new TinyKvRpc(addr, 20_000, BIG);
  const client = new grpc.Client(addr, grpc.credentials.createInsecure(), BIG);
  try {
    const keys = [0, 1, 2, 3].map((i) => Buffer.from(`big/${i}`));
    for (const [i, key] of keys.entries()) {
      const put = await unary.rawPut({ key, value: Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i) });
      expect(put.error).toBe("");
      // Each alone is fine by a unary rpc.
      expect((await unary.rawGet({ key })).value.length).toBe(MAX_VALUE_BYTES);
    }
    const call = client.makeBidiStreamRequest(
      "/tinykvpb.TinyKv/BatchCommands",
      (m: BatchCommandsRequest) => Buffer.from(BatchCommandsRequest.encode(m).finish()),
      (bytes: Buffer) => BatchCommandsResponse.decode(bytes),
    );
    const sizes = new Map<bigint, number>();
    let status: grpc.StatusObject | undefined;
    call.on("data", (m: BatchCommandsResponse) => {
      m.requestIds.forEach((id, i) => {
        sizes.set(id, m.responses[i]!.RawGet?.value.length ?? -1);
      });
    });
    call.on("error", () => undefined);
    call.on("status", (s: grpc.StatusObject) => (status = s));
    call.write({
      requestIds: keys.map((_, i) => BigInt(i + 1)),
      requests: keys.map((key) => ({ RawGet: { key, cf: "" } })),
    });
    await waitFor(() => sizes.size === keys.length || status !== undefined, {
      timeoutMs: 20_000,
      message: "answers or the end of the stream",
    });
    expect(status && `${status.code} ${status.details}`).toBeUndefined();
    expect([...sizes.values()]).toEqual(keys.map(() => MAX_VALUE_BYTES));
    call.end();
  } finally {
    unary.close();
    client.close();
  }
}, 60_000);

it("a sub-request whose answer is over the message limit gets an error answer; the stream serves on", async () => {
  const unary = new TinyKvRpc(addr, 20_000, BIG);
  const client = new grpc.Client(addr, grpc.credentials.createInsecure(), BIG);
  try {
    for (const i of [0, 1, 2]) {
      const put = await unary.rawPut({ key: Buffer.from(`scan/${i}`), value: Buffer.alloc(MAX_VALUE_BYTES, 0x61 + i) });
      expect(put.error).toBe("");
    }
    await unary.rawPut({ key: Buffer.from("small"), value: Buffer.from("v") });
    const call = client.makeBidiStreamRequest(
      "/tinykvpb.TinyKv/BatchCommands",
      (m: BatchCommandsRequest) => Buffer.from(BatchCommandsRequest.encode(m).finish()),
      (bytes: Buffer) => BatchCommandsResponse.decode(bytes),
    );
    const answers = new Map<bigint, BatchCommandsResponse["responses"][number]>();
    let status: grpc.StatusObject | undefined;
    call.on("data", (m: BatchCommandsResponse) => {
      m.requestIds.forEach((id, i) => {
        answers.set(id, m.responses[i]!);
      });
    });
    call.on("error", () => undefined);
    call.on("status", (s: grpc.StatusObject) => (status = s));
    // 24 MiB of values in one scan answer: it cannot be sent as any message.
    call.write({
      requestIds: [1n],
      requests: [
        {
          RawScan: { startKey: Buffer.from("scan/"), endKey: Buffer.from("scan0"), limit: 10, cf: "", reverse: false },
        },
      ],
    });
    await waitFor(() => answers.size === 1 || status !== undefined, {
      timeoutMs: 20_000,
      message: "the scan's answer",
    });
    call.write({ requestIds: [2n], requests: [{ RawGet: { key: Buffer.from("small"), cf: "" } }] });
    await waitFor(() => answers.size === 2 || status !== undefined, { timeoutMs: 20_000, message: "the get's answer" });
    expect(status && `${status.code} ${status.details}`).toBeUndefined();
    // Refused either way: by the stream (RESOURCE_EXHAUSTED), or by RawScan's own byte limit.
    const scan = answers.get(1n);
    expect(scan?.Error?.code === grpc.status.RESOURCE_EXHAUSTED || /bytes/.test(scan?.RawScan?.error ?? "")).toBe(true);
    expect(answers.get(2n)?.RawGet?.value.toString()).toBe("v");
    call.end();
  } finally {
    unary.close();
    client.close();
  }
}, 60_000);
