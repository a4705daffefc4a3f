import { status, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall, type ServerDuplexStream } from "@grpc/grpc-js";
import { Peer, Region } from "../proto/metapb.js";
import {
  AllocIDResponse,
  AskSplitResponse,
  BootstrapResponse,

  GetAllStoresResponse,
  GetClusterConfigResponse,
  GetGCSafePointResponse,
  GetMembersResponse,
  GetOperatorResponse,
  GetRegionResponse,
  GetStoreResponse,
  IsBootstrappedResponse,
  Member,
  PutClusterConfigResponse,
  PutStoreResponse,
  RegionHeartbeatResponse,
  ScanRegionsResponse,
  ScatterRegionResponse,
  StoreHeartbeatResponse,
  TsoResponse,
  UpdateGCSafePointResponse,
  type RequestHeader,
  type ResponseHeader,
  type SchedulerServer,
  type TsoRequest,
} from "../proto/schedulerpb.js";
import type { Logger } from "../util/logger.js";
import type { SchedulerCore } from "./core.js";
import { ClusterIdMismatchError, InvalidRequestError, SchedulerError } from "./errors.js";
import type { HeartbeatStream, HeartbeatStreams } from "./heartbeat-streams.js";
import type { RegionInfo } from "./region-info.js";

interface Factory<T> {
  create(base?: object): T;
}

type WithHeader = { header?: RequestHeader | undefined };

/** A gRPC status error (what grpc-js sends as the call's status). */
export function grpcError(code: status, message: string): Error & { code: status; details: string } {
  return Object.assign(new Error(message), { code, details: message });
}

/** Maps a thrown error to a gRPC status error, or undefined for header errors (answered in the response). */
export function toGrpcError(err: unknown): (Error & { code: status }) | undefined {
  if (err instanceof SchedulerError) return undefined;
  if (err instanceof ClusterIdMismatchError) return grpcError(status.FAILED_PRECONDITION, err.message);
  if (err instanceof InvalidRequestError) {
    return grpcError(err.grpcCode === "invalid_argument" ? status.INVALID_ARGUMENT : status.UNKNOWN, err.message);
  }
  return grpcError(status.UNKNOWN, err instanceof Error ? err.message : String(err));
}

function leaderPeer(r: RegionInfo): Peer | undefined {
  return r.leader ? Peer.create(r.leader) : undefined;
}

/** The Scheduler gRPC handlers: decode, call the core, map errors. No scheduling logic lives here. */
export function createSchedulerService(
  core: SchedulerCore,
  streams: HeartbeatStreams,
  self: { name: string; clientUrl: string },
  log: Logger,
): SchedulerServer {
  const header = (error?: SchedulerError): ResponseHeader => ({
    clusterId: core.clusterId,
    error: error ? { type: error.type, message: error.message } : undefined,
  });

  function unary<Req extends WithHeader, Resp>(
    name: string,
    factory: Factory<Resp>,
    fn: (req: Req) => object | Promise<object>,
    checkHeader = true,
  ): handleUnaryCall<Req, Resp> {
    return (call: ServerUnaryCall<Req, Resp>, cb: sendUnaryData<Resp>) => {
      (async () => {
        if (checkHeader) core.checkHeader(call.request.header);
        return factory.create({ header: header(), ...(await fn(call.request)) });
      })().then(
        (resp) => cb(null, resp),
        (err) => {
          const g = toGrpcError(err);
          if (!g) return cb(null, factory.create({ header: header(err as SchedulerError) }));
          if (g.code === status.UNKNOWN && !(err instanceof InvalidRequestError)) log.warn({ err, rpc: name }, "rpc failed");
          cb(g);
        },
      );
    };
  }

  const member = Member.create({ name: self.name, memberId: core.clusterId ^ 0x5eedn, clientUrls: [self.clientUrl], peerUrls: [] });

  const regionResponse = (r: RegionInfo | undefined) =>
    r ? { region: Region.create(r.meta), leader: leaderPeer(r) } : {};

  return {
    getMembers: unary("GetMembers", GetMembersResponse, () => ({ members: [member], leader: member, etcdLeader: member }), false),

    tso: (call: ServerDuplexStream<TsoRequest, TsoResponse>) => {
      let chain = Promise.resolve();
      call.on("data", (req: TsoRequest) => {
        chain = chain.then(async () => {
          if (call.destroyed) return;
          try {
            core.checkHeader(req.header);
            const ts = await core.nextTimestamp(req.count);
            call.write(TsoResponse.create({ header: header(), count: req.count, timestamp: { physical: BigInt(ts.physical), logical: BigInt(ts.logical) } }));
          } catch (err) {
            call.emit("error", toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err)));
          }
        });
      });
      call.on("end", () => void chain.then(() => call.end()));
      call.on("error", () => {});
    },

    bootstrap: unary("Bootstrap", BootstrapResponse, async (req) => {
      await core.bootstrap(req.store);
      return {};
    }),
    isBootstrapped: unary("IsBootstrapped", IsBootstrappedResponse, () => ({ bootstrapped: core.isBootstrapped() })),
    allocId: unary("AllocID", AllocIDResponse, async () => ({ id: await core.allocId() })),
    getStore: unary("GetStore", GetStoreResponse, (req) => {
      const s = core.getStore(req.storeId);
      return { store: s.meta, stats: s.stats };
    }),
    putStore: unary("PutStore", PutStoreResponse, async (req) => {
      await core.putStore(req.store);
      return {};
    }),
    getAllStores: unary("GetAllStores", GetAllStoresResponse, (req) => ({ stores: core.getAllStores(req.excludeTombstoneStores) })),
    storeHeartbeat: unary("StoreHeartbeat", StoreHeartbeatResponse, (req) => {
      core.storeHeartbeat(req.stats);
      return {};
    }),

    regionHeartbeat: (call: HeartbeatStream) => {
      const fail = (err: Error & { code: status }) => {
        streams.unbind(call);
        call.emit("error", err);
      };
      call.on("data", (req) => {
        if (call.destroyed) return;
        try {
          core.checkHeader(req.header);
          if (!core.isBootstrapped()) {
            call.write(RegionHeartbeatResponse.create({ header: header(SchedulerError.notBootstrapped()) }));
            call.end();
            return;
          }
          streams.bind(core.leaderStoreOf(req).id, call);
          core.handleRegionHeartbeat(req);
        } catch (err) {
          const g = toGrpcError(err);
          if (g) return fail(g);
          call.write(
            RegionHeartbeatResponse.create({
              header: header(err as SchedulerError),
              regionId: req.region?.id ?? 0n,
              targetPeer: req.leader,
            }),
          );
        }
      });
      call.on("end", () => {
        streams.unbind(call);
        call.end();
      });
      call.on("error", () => streams.unbind(call));
      call.on("cancelled", () => streams.unbind(call));
    },

    getRegion: unary("GetRegion", GetRegionResponse, (req) => regionResponse(core.getRegionByKey(req.regionKey))),
    getPrevRegion: unary("GetPrevRegion", GetRegionResponse, (req) => regionResponse(core.getPrevRegion(req.regionKey))),
    getRegionById: unary("GetRegionByID", GetRegionResponse, (req) => regionResponse(core.getRegionById(req.regionId))),
    scanRegions: unary("ScanRegions", ScanRegionsResponse, (req) => {
      const rs = core.scanRegions(req.startKey, req.endKey, req.limit);
      return { regions: rs.map((r) => Region.create(r.meta)), leaders: rs.map((r) => leaderPeer(r) ?? Peer.create()) };
    }),
    askSplit: unary("AskSplit", AskSplitResponse, (req) => core.askSplit(req.region)),
    getClusterConfig: unary("GetClusterConfig", GetClusterConfigResponse, () => ({ cluster: core.getClusterConfig() })),
    putClusterConfig: unary("PutClusterConfig", PutClusterConfigResponse, async (req) => {
      await core.putClusterConfig(req.cluster);
      return {};
    }),
    scatterRegion: unary("ScatterRegion", ScatterRegionResponse, () => ({})),
    getGcSafePoint: unary("GetGCSafePoint", GetGCSafePointResponse, () => ({ safePoint: core.getGcSafePoint() })),
    updateGcSafePoint: unary("UpdateGCSafePoint", UpdateGCSafePointResponse, async (req) => ({
      newSafePoint: await core.updateGcSafePoint(req.safePoint),
    })),
    getOperator: unary("GetOperator", GetOperatorResponse, (req) => {
      const op = core.getOperator(req.regionId);
      if (!op) throw SchedulerError.regionNotFound(`no operator for region ${req.regionId}`);
      return { regionId: req.regionId, desc: Buffer.from(op.desc), kind: Buffer.from(op.kind), status: op.status };
    }),
  };
}

