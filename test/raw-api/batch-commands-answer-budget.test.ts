// A BatchCommands client that sends reads and never reads the answers must not make the store
// buffer them without end. Before the byte budget, a stream stopped reading only after 1,024
// sub-requests in flight or 16 messages gRPC had not taken: one message of 64 RawGets of a 4 MiB
// value left 256 MiB of answers in the store's memory (1,024 of an 8 MiB value: 8 GiB), and 12
// messages of one 8 MiB read each, 96 MiB.
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { TinyKvRpc } from "../../src/client/kv-rpc.js";
import { MAX_BATCH_ANSWER_BYTES, MAX_BATCH_ANSWER_BYTES_HELD } from "../../src/kv/server/batch-commands.js";
import { MAX_VALUE_BYTES } from "../../src/kv/server/limits.js";
import type { BatchCommandsResponse_Response } from "../../src/proto/tinykvpb.js";
import { BatchCommandsRequest, BatchCommandsResponse } from "../../src/proto/tinykvpb.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir, waitFor } from "../harness/wait.js";

/**
 * A BatchCommands stream on a bare HTTP/2 connection that reads nothing until told: its HTTP/2
 * stream stays paused, so the store's answers stop at the flow-control window. (A grpc-js client
 * cannot do that: until its application asks for a first message it keeps reading the socket into
 * memory, and after that it takes 16 messages ahead.)
 */
class UnreadStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  readonly answers = new Map<bigint, BatchCommandsResponse_Response>();
  answeredTwice: bigint | undefined;
  /** grpc-status of the stream's end. */
  status: number | undefined;

  constructor(addr: string) {
    this.session = http2.connect(`http://${addr}`);
    this.session.on("error", () => undefined);
    this.stream = this.session.request({
      ":method": "POST",
      ":path": "/tinykvpb.TinyKv/BatchCommands",
      "content-type": "application/grpc",
      te: "trailers",
    });
    this.stream.pause();
    this.stream.on("error", () => undefined);
    this.stream.on("trailers", (h) => (this.status = Number(h["grpc-status"])));
  }

  write(msg: BatchCommandsRequest): void {
    const body = BatchCommandsRequest.encode(msg).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    this.stream.write(frame);
  }

  /** From now on reads every answer as it comes. */
  read(): void {
    this.stream.on("data", (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.chunkBytes += chunk.length;
      for (;;) {
        const head = this.chunks[0]!.length >= 5 ? this.chunks[0]! : Buffer.concat(this.chunks);
        if (head.length < 5 || this.chunkBytes < 5 + head.readUInt32BE(1)) return;
        // A whole message is in: join only now (joining at every chunk is quadratic in its size).
        const all = Buffer.concat(this.chunks, this.chunkBytes);
        const end = 5 + all.readUInt32BE(1);
        const msg = BatchCommandsResponse.decode(all.subarray(5, end));
        this.chunks = end < all.length ? [all.subarray(end)] : [];
        this.chunkBytes = all.length - end;
        msg.requestIds.forEach((id, n) => {
          if (this.answers.has(id)) this.answeredTwice = id;
          this.answers.set(id, msg.responses[n]!);
        });
        if (this.chunkBytes === 0) return;
      }
    });
    this.stream.resume();
  }

  end(): void {
    this.stream.end();
  }

  close(): void {
    this.stream.close();
    this.session.close();
  }
}

const VALUE_BYTES = 4 << 20;
const keys = [0, 1, 2].map((i) => Buffer.from(`budget/${i}`));
const HUGE_KEY = Buffer.from("budget/huge");
const expectedValue = (id: bigint) => Buffer.alloc(VALUE_BYTES, 0x61 + (Number(id) % 3));
/** Room for the small answers (errors) beside the big ones. */
const SLACK = 1 << 20;

let dir: ReturnType<typeof tempDir>;
let node: StandaloneNode;
let client: UnreadStream;
let nextId = 0n;

// A server of its own per test: the peak checked is the server's since it started.
beforeEach(async () => {
  dir = tempDir();
  node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
  const addr = `127.0.0.1:${node.port}`;
  const unary = new TinyKvRpc(addr, 20_000, { "grpc.max_send_message_length": 16 << 20 });
  for (const [i, key] of keys.entries()) {
    expect((await unary.rawPut({ key, value: Buffer.alloc(VALUE_BYTES, 0x61 + i) })).error).toBe("");
  }
  expect((await unary.rawPut({ key: HUGE_KEY, value: Buffer.alloc(MAX_VALUE_BYTES, 0x7a) })).error).toBe("");
  unary.close();
  client = new UnreadStream(addr);
});
afterEach(async () => {
  client.close();
  await node.stop();
  dir.cleanup();
});

/** Starts reading; resolves with every answer once `count` have come, the stream still up. */
async function readAnswers(count: number): Promise<Map<bigint, BatchCommandsResponse_Response>> {
  client.read();
  await waitFor(() => client.answers.size >= count || client.status !== undefined, {
    timeoutMs: 10_000,
    message: `${count} answers once the client reads (${client.answers.size} came)`,
  });
  expect(client.status, "the stream ended early").toBeUndefined();
  expect(client.answeredTwice, "a request answered twice").toBeUndefined();
  return client.answers;
}

async function endsOk(): Promise<void> {
  client.end();
  await waitFor(() => client.status !== undefined, { timeoutMs: 10_000, message: "the stream to end" });
  expect(client.status).toBe(grpc.status.OK);
  expect(node.batchStreams.stats()).toMatchObject({ inFlight: 0, answerBytes: 0 });
}

it("reads started at once past the budget are refused, not held: the store holds at most budget + one message", async () => {
  // 64 reads of 4 MiB in one message: 256 MiB of answers, all started at once.
  const ids = Array.from({ length: 64 }, () => ++nextId);
  client.write({ requestIds: ids, requests: ids.map((i) => ({ RawGet: { key: keys[Number(i) % 3]!, cf: "" } })) });
  await waitFor(
    () => {
      const s = node.batchStreams.stats();
      return s.inFlight === 0 && s.answerBytes >= MAX_BATCH_ANSWER_BYTES;
    },
    { timeoutMs: 10_000, message: "the store to answer every read and hold a full budget of answers" },
  );
  expect(node.batchStreams.stats().answerBytesPeak, "answer bytes the store held").toBeLessThanOrEqual(
    MAX_BATCH_ANSWER_BYTES_HELD + SLACK,
  );
  const answers = await readAnswers(ids.length);
  let served = 0;
  for (const i of ids) {
    const a = answers.get(i)!;
    if (a.RawGet) {
      expect(a.RawGet.value.equals(expectedValue(i)), `the value of request ${i}`).toBe(true);
      served++;
    } else {
      // Refused: nothing happened, the client may retry.
      expect(a.Error?.code, `request ${i}`).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(a.Error?.message).toMatch(/not served/);
    }
  }
  expect(served, "reads served with their value").toBeGreaterThanOrEqual(MAX_BATCH_ANSWER_BYTES / VALUE_BYTES);
  await endsOk();
}, 30_000);

it("a store holding its budget of answers stops reading the stream; what the client sent meanwhile is served once it reads", async () => {
  // One 8 MiB read per message, each sent once the store holds the answers before it.
  const ids: bigint[] = [];
  for (let n = 1; n <= 12; n++) {
    const id = ++nextId;
    ids.push(id);
    client.write({ requestIds: [id], requests: [{ RawGet: { key: HUGE_KEY, cf: "" } }] });
    await waitFor(
      () => {
        const s = node.batchStreams.stats();
        // Served and held, or the store stopped reading.
        return s.inFlight === 0 && (s.answerBytes >= n * MAX_VALUE_BYTES || s.paused === 1);
      },
      { timeoutMs: 10_000, message: `read ${n} to be served and held, or the store to stop reading` },
    );
  }
  const s = node.batchStreams.stats();
  // It holds its budget and leaves the rest to HTTP/2 flow control.
  expect(s.paused, "streams the store stopped reading").toBe(1);
  expect(s.answerBytes).toBeGreaterThanOrEqual(MAX_BATCH_ANSWER_BYTES);
  expect(s.answerBytesPeak, "answer bytes the store held").toBeLessThanOrEqual(
    MAX_BATCH_ANSWER_BYTES + MAX_VALUE_BYTES + SLACK,
  );
  const answers = await readAnswers(ids.length);
  for (const i of ids) expect(answers.get(i)?.RawGet?.value.length, `request ${i}`).toBe(MAX_VALUE_BYTES);
  await endsOk();
}, 30_000);
