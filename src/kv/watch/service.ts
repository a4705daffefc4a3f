import type * as grpc from "@grpc/grpc-js";
import type { ChangeDataEvent, ChangeDataRequest, ChangeDataServer } from "../../proto/cdcpb.js";
import { ChangeDataRequest_KvAPI } from "../../proto/cdcpb.js";
import type { Store } from "../raftstore/store.js";
import { raftLogKey } from "../raftstore/keys.js";
import { asBuffer } from "../raftstore/peer-storage.js";
import { Entry } from "../../raft/eraftpb.js";
import type { Logger } from "../../util/logger.js";
import type { Runtime } from "../../util/runtime.js";
import { MAX_KEY_BYTES } from "../server/limits.js";
import type { FeedOptions, FeedSink, FeedStore } from "./feed.js";
import { DEFAULT_FEED_OPTIONS, RegionFeed } from "./feed.js";
import type { ChangeHub } from "./hub.js";
import { RawRegionFeed } from "./raw-feed.js";
import { FeedMemoryQuota } from "./quota.js";
import { feedError } from "./rows.js";

type Call = grpc.ServerWritableStream<ChangeDataRequest, ChangeDataEvent>;

/** The store as the feeds see it. */
export function feedStoreOf(store: Store): FeedStore {
  return {
    kv: store.kv,
    async entryData(regionId, index) {
      const stored = await store.raftEngine.getMeta(raftLogKey(regionId, index));
      return stored && asBuffer(Entry.decode(stored).data);
    },
    replica(regionId) {
      const peer = store.peers.get(regionId);
      if (!peer || peer.destroyed || !peer.storage.isInitialized()) return undefined;
      return { region: peer.region, isLeader: peer.isLeader(), self: peer.meta, leader: peer.leader() };
    },
    read: (header) => store.read(header),
  };
}

/** Why a request cannot be served, or undefined: checked before anything else happens. */
export function invalidRequest(req: ChangeDataRequest): string | undefined {
  if (req.regionId === 0n) return "region_id is required";
  if (!req.regionEpoch) return "region_epoch is required";
  if (req.startKey.length > MAX_KEY_BYTES || req.endKey.length > MAX_KEY_BYTES)
    return `start_key and end_key are at most ${MAX_KEY_BYTES} bytes`;
  if (req.endKey.length > 0 && Buffer.compare(req.startKey, req.endKey) >= 0)
    return "start_key must be below end_key (an empty end_key means no bound)";
  if (!(req.kvApi in ChangeDataRequest_KvAPI) || req.kvApi === ChangeDataRequest_KvAPI.UNRECOGNIZED)
    return `kv_api ${req.kvApi} is not one of TiDB (0), RawKV (1), TxnKV (2)`;
  if (req.kvApi !== ChangeDataRequest_KvAPI.RawKV && req.fromIndex !== 0n)
    return "from_index is for kv_api = RawKV (a transactional feed starts after checkpoint_ts)";
  return undefined;
}

/**
 * The cdcpb.ChangeData service: one RegionFeed per EventFeed call. A request that cannot be
 * served gets one error event and the end of the stream, never a crash.
 */
export class ChangeDataFeeds {
  private readonly feeds = new Set<RegionFeed | RawRegionFeed>();
  private readonly options: FeedOptions;
  private readonly quota: FeedMemoryQuota;

  constructor(
    private readonly deps: {
      store: FeedStore;
      hub: ChangeHub;
      tso(): Promise<bigint>;
      runtime: Runtime;
      log: Logger;
      options?: Partial<FeedOptions>;
    },
  ) {
    this.options = { ...DEFAULT_FEED_OPTIONS, ...deps.options };
    this.quota = new FeedMemoryQuota(this.options.storeMaxPendingBytes);
  }

  /** Bytes of changes the store's feeds hold for their watchers now. */
  get pendingBytes(): number {
    return this.quota.usedBytes;
  }

  service(): ChangeDataServer {
    return { eventFeed: (call) => this.serve(call) };
  }

  /** Feeds running now (tests, status). */
  get active(): number {
    return this.feeds.size;
  }

  /** Ends every feed (the server stops): watchers see the stream end and resume elsewhere. */
  closeAll(): void {
    for (const feed of this.feeds) feed.close(true);
    this.feeds.clear();
  }

  private serve(call: Call): void {
    const req = call.request;
    const invalid = invalidRequest(req);
    if (invalid) {
      const error = feedError(`invalid EventFeed request: ${invalid}`, {});
      call.write({ events: [{ regionId: req.regionId, index: 0n, requestId: req.requestId, error }] });
      call.end();
      return;
    }
    const sink = sinkOf(call);
    const deps = { ...this.deps, options: this.options, quota: this.quota };
    const feed =
      req.kvApi === ChangeDataRequest_KvAPI.RawKV
        ? new RawRegionFeed(req, deps, sink)
        : new RegionFeed(req, deps, sink);
    this.feeds.add(feed);
    const finish = () => {
      feed.close();
      this.feeds.delete(feed);
    };
    call.on("cancelled", finish);
    call.on("close", finish);
    // A watcher going away mid-stream is normal; it resubscribes.
    call.on("error", finish);
    feed.start().then(
      () => {
        if (feed.closed) this.feeds.delete(feed);
      },
      (err: unknown) => {
        this.deps.log.error({ err, region_id: String(req.regionId) }, "change feed failed");
        finish();
        call.end();
      },
    );
  }
}

function sinkOf(call: Call): FeedSink {
  let ended = false;
  return {
    write: (ev) => (ended ? true : call.write(ev)),
    drain: () =>
      new Promise<void>((resolve) => {
        if (ended || call.destroyed) return resolve();
        const done = () => {
          call.off("drain", done);
          call.off("close", done);
          resolve();
        };
        call.once("drain", done);
        call.once("close", done);
      }),
    end: () => {
      if (ended) return;
      ended = true;
      call.end();
    },
  };
}
