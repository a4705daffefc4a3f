// A watcher that stops reading: the store holds a bounded amount of its changes, then ends its feed
// with ServerIsBusy; resuming from the last resolved ts loses nothing. The TS client bounds its own
// buffer the same way: a slow consumer of KvClient.watch still sees every change once, in order.
import http2 from "node:http2";
import { afterEach, expect, it } from "vitest";
import type { KvClient } from "../../src/client/client.js";
import { prefixRange } from "../../src/client/watch.js";
import type { Error as CdcError } from "../../src/proto/cdcpb.js";
import { ChangeDataEvent, ChangeDataRequest, Event_LogType, Event_Row_OpType } from "../../src/proto/cdcpb.js";
import type { Written } from "./watch-cluster.js";
import { byPosition, collectUntil, commitTxn, WatchCluster } from "./watch-cluster.js";

let cluster: WatchCluster | undefined;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = undefined;
});

const BIG = "b".repeat(8 * 1024);

/** 4 writers x `txns` transactions x 3 keys of 8 KiB under b/. */
async function writeBig(kv: KvClient, tag: string, txns: number): Promise<Written[]> {
  const all: Written[] = [];
  await Promise.all(
    [0, 1, 2, 3].map(async (w) => {
      for (let i = 0; i < txns; i++) {
        const puts: Array<[string, string]> = [0, 1, 2].map((k) => [`b/${w}/${k}`, `${tag}${w}.${i}.${k}.${BIG}`]);
        all.push(...(await commitTxn(kv, puts)));
      }
    }),
  );
  return all.sort(byPosition);
}

/**
 * One EventFeed call over a bare HTTP/2 stream, so that "not reading" really stops reading: a
 * paused grpc-js stream keeps taking messages off the socket into its own buffer.
 */
function rawFeed(addr: string, req: ChangeDataRequest) {
  const session = http2.connect(`http://${addr}`);
  const stream = session.request({
    ":method": "POST",
    ":path": "/cdcpb.ChangeData/EventFeed",
    "content-type": "application/grpc",
    te: "trailers",
  });
  const body = Buffer.from(ChangeDataRequest.encode(req).finish());
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  stream.end(frame);
  stream.pause();
  const events: ChangeDataEvent["events"] = [];
  let buffered = Buffer.alloc(0);
  const ended = new Promise<void>((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
        const len = buffered.readUInt32BE(1);
        events.push(...ChangeDataEvent.decode(buffered.subarray(5, 5 + len)).events);
        buffered = buffered.subarray(5 + len);
      }
    });
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  return {
    resume: () => stream.resume(),
    /** Rows, the last resolved ts and the error the feed ended with. */
    async end(timeoutMs: number): Promise<{ rows: Written[]; resolved: bigint; error?: CdcError }> {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the feed did not end within ${timeoutMs} ms (${events.length} events read)`)),
          timeoutMs,
        );
      });
      await Promise.race([ended, late]).finally(() => clearTimeout(timer));
      session.close();
      const rows: Written[] = [];
      let resolved = 0n;
      let error: CdcError | undefined;
      for (const ev of events) {
        if (ev.error) error = ev.error;
        if (ev.resolvedTs !== undefined) resolved = ev.resolvedTs;
        for (const r of ev.entries?.entries ?? []) {
          if (r.type === Event_LogType.INITIALIZED) continue;
          const value = r.opType === Event_Row_OpType.PUT ? r.value.toString() : undefined;
          rows.push({ key: r.key.toString(), value, commitTs: r.commitTs });
        }
      }
      return { rows, resolved, error };
    },
  };
}

it("a watcher that stops reading gets ServerIsBusy, and resuming from its resolved ts loses nothing", async () => {
  // The transport takes some 30 rows of 8 KiB before it pushes back (flow-control windows, grpc-js's
  // 16 messages); 48 rows leave the feed well over 1 KiB of queued records.
  cluster = new WatchCluster({ watch: { maxPendingBytes: 1024, resolvedTsIntervalMs: 100 } });
  const kv = await cluster.start();
  const range = prefixRange(Buffer.from("b/"));
  const target = await kv.cache.target(range.start);
  const fromTs = await kv.tso();
  const req = (checkpointTs: bigint) =>
    ChangeDataRequest.fromPartial({
      regionId: target.region.id,
      regionEpoch: target.region.regionEpoch,
      checkpointTs,
      startKey: range.start,
      endKey: range.end,
    });

  const stalled = rawFeed(target.addr, req(fromTs)); // a watcher that does not read
  const expected = await writeBig(kv, "x", 4);
  stalled.resume();
  const first = await stalled.end(15_000);
  expect(first.error?.serverIsBusy, `the feed ended with: ${first.error?.message ?? "no error"}`).toBeDefined();
  expect(first.error?.message).toMatch(/too slow/);
  expect(first.rows.length, "the feed ended before sending everything").toBeLessThan(expected.length);

  // Resume from the last resolved ts it saw: the rest, nothing twice.
  const resumed = kv.watch("b/", { fromTs: first.resolved || fromTs });
  const rest = await collectUntil(resumed, kv.tso(), 20_000);
  resumed.stop();
  const before = first.rows.filter((r) => r.commitTs <= first.resolved);
  expect([...before.sort(byPosition), ...rest]).toEqual(expected);
}, 90_000);

it("a slow consumer of KvClient.watch still sees every change once, in order", async () => {
  cluster = new WatchCluster({ watch: { maxPendingBytes: 2048, resolvedTsIntervalMs: 100 } });
  const kv = await cluster.start();
  const fromTs = await kv.tso();
  // Past 4 unread events the client drops its feeds and resubscribes once the consumer caught up.
  const watch = kv.watch("b/", { fromTs, highWaterMark: 4 });
  const slow: AsyncIterator<typeof watch extends AsyncIterator<infer E> ? E : never> = {
    next: async () => {
      await new Promise((r) => setTimeout(r, 5));
      return watch.next();
    },
  };
  const expected: Written[] = [];
  const writes = writeBig(kv, "y", 3).then(async (w) => {
    expected.push(...w);
    return kv.tso();
  });
  const seen = await collectUntil(slow, writes, 20_000);
  watch.stop();
  expect(watch.sheds, "the consumer was never too slow: the test tests nothing").toBeGreaterThan(0);
  expect(seen).toEqual(expected);
}, 90_000);
