import type { handleUnaryCall, sendUnaryData, ServerUnaryCall, ServerDuplexStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { RegionHeartbeatRequest, SchedulerServer, TsoRequest, TsoResponse } from "../../proto/schedulerpb.js";
import type { Logger } from "../../util/logger.js";
import type { SchedulerCore } from "../core/core.js";
import { ClusterIdMismatchError, InvalidRequestError, SchedulerError } from "../errors.js";
import { createSchedulerHandlers } from "./handlers.js";
import type { HeartbeatStream, HeartbeatStreams } from "./heartbeat-streams.js";

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

/** The Scheduler gRPC handlers: decode, call the shared handlers (handlers.ts), map errors. No scheduling logic lives here. */
export function createSchedulerService(
  core: SchedulerCore,
  streams: HeartbeatStreams,
  self: { name: string; clientUrl: string },
  log: Logger,
): SchedulerServer {
  const h = createSchedulerHandlers(core, self);

  function unary<Req, Resp>(name: string, fn: (req: Req) => Promise<Resp>): handleUnaryCall<Req, Resp> {
    return (call: ServerUnaryCall<Req, Resp>, cb: sendUnaryData<Resp>) => {
      fn(call.request).then(
        (resp) => cb(null, resp),
        (err: unknown) => {
          const g = toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err));
          if (g.code === status.UNKNOWN && !(err instanceof InvalidRequestError))
            log.warn({ err, rpc: name }, "rpc failed");
          cb(g);
        },
      );
    };
  }

  return {
    getMembers: unary("GetMembers", h.getMembers),

    tso: (call: ServerDuplexStream<TsoRequest, TsoResponse>) => {
      let chain = Promise.resolve();
      call.on("data", (req: TsoRequest) => {
        chain = chain.then(async () => {
          if (call.destroyed) return;
          try {
            call.write(await h.tso(req));
          } catch (err) {
            call.emit("error", toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err)));
          }
        });
      });
      call.on("end", () => void chain.then(() => call.end()));
      // The client went away: nothing to answer.
      call.on("error", () => {});
    },

    bootstrap: unary("Bootstrap", h.bootstrap),
    isBootstrapped: unary("IsBootstrapped", h.isBootstrapped),
    allocId: unary("AllocID", h.allocId),
    getStore: unary("GetStore", h.getStore),
    putStore: unary("PutStore", h.putStore),
    getAllStores: unary("GetAllStores", h.getAllStores),
    storeHeartbeat: unary("StoreHeartbeat", h.storeHeartbeat),

    regionHeartbeat: (call: HeartbeatStream) => {
      const fail = (err: Error & { code: status }) => {
        streams.unbind(call);
        call.emit("error", err);
      };
      call.on("data", (req: RegionHeartbeatRequest) => {
        if (call.destroyed) return;
        try {
          const out = h.regionHeartbeat(req);
          if (out.bindStoreId !== undefined) streams.bind(out.bindStoreId, call);
          if (out.reply) call.write(out.reply);
          if (out.end) call.end();
        } catch (err) {
          fail(toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err)));
        }
      });
      call.on("end", () => {
        streams.unbind(call);
        call.end();
      });
      call.on("error", () => streams.unbind(call));
      call.on("cancelled", () => streams.unbind(call));
    },

    getRegion: unary("GetRegion", h.getRegion),
    getPrevRegion: unary("GetPrevRegion", h.getPrevRegion),
    getRegionById: unary("GetRegionByID", h.getRegionById),
    scanRegions: unary("ScanRegions", h.scanRegions),
    askSplit: unary("AskSplit", h.askSplit),
    getClusterConfig: unary("GetClusterConfig", h.getClusterConfig),
    putClusterConfig: unary("PutClusterConfig", h.putClusterConfig),
    scatterRegion: unary("ScatterRegion", h.scatterRegion),
    getGcSafePoint: unary("GetGCSafePoint", h.getGcSafePoint),
    updateGcSafePoint: unary("UpdateGCSafePoint", h.updateGcSafePoint),
    getOperator: unary("GetOperator", h.getOperator),
    memberAdd: unary("MemberAdd", h.memberAdd),
    memberRemove: unary("MemberRemove", h.memberRemove),
  };
}
